package main

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTrainerHelper plays both processes of TestTrainerStopsWhenAttncIsKilled:
// as "attnc" it runs a "trainer" (this test binary again) through
// runTrainer; as the trainer it writes its pid to $TRAINER_HELPER_DIR and,
// on SIGTERM, writes "term" there and exits, as the real trainer
// checkpoints and stops.
func TestTrainerHelper(t *testing.T) {
	dir := os.Getenv("TRAINER_HELPER_DIR")
	switch os.Getenv("TRAINER_HELPER_ROLE") {
	case "attnc":
		os.Setenv("TRAINER_HELPER_ROLE", "trainer")
		c := &cli{stdout: os.Stdout, stderr: os.Stderr}
		c.runTrainer(os.Args[0], nil, "-test.run=^TestTrainerHelper$")
		os.Exit(0)
	case "trainer":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		select {
		case <-sigs:
			os.WriteFile(filepath.Join(dir, "term"), nil, 0o644)
		case <-time.After(time.Minute):
		}
		os.Exit(0)
	default:
		t.Skip("a helper process for TestTrainerStopsWhenAttncIsKilled")
	}
}

// kill -9 of attnc cannot be passed on by attnc: the kernel sends the
// trainer SIGTERM (its checkpointing stop) when attnc dies, so no trainer
// trains on alone.
func TestTrainerStopsWhenAttncIsKilled(t *testing.T) {
	dir := t.TempDir()
	parent := exec.Command(os.Args[0], "-test.run=^TestTrainerHelper$")
	parent.Env = append(os.Environ(), "TRAINER_HELPER_ROLE=attnc", "TRAINER_HELPER_DIR="+dir)
	require.NoError(t, parent.Start())
	defer func() { parent.Process.Kill(); parent.Wait() }()

	var child int
	for deadline := time.Now().Add(20 * time.Second); child == 0; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "pid"))
		child, _ = strconv.Atoi(string(b))
		require.True(t, time.Now().Before(deadline), "the trainer did not start")
	}
	defer syscall.Kill(child, syscall.SIGKILL) // should it outlive the test

	require.NoError(t, parent.Process.Signal(syscall.SIGKILL))
	parent.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "term")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trainer (process %d) got no SIGTERM when attnc was killed", child)
		}
	}
}

// A trainer killed by a signal it cannot catch says nothing itself, so
// attnc says what happened and how to continue, and fails.
func TestTrainerKilledIsReported(t *testing.T) {
	var stderr strings.Builder
	c := &cli{stdout: io.Discard, stderr: &stderr}
	code := c.runTrainer("/bin/sh", nil, "-c", "kill -9 $$")
	require.NotEqual(t, exitOK, code)
	require.Contains(t, stderr.String(), "the trainer was stopped by a signal (signal: killed)")
	require.Contains(t, stderr.String(), "attnc train -resume")
}
