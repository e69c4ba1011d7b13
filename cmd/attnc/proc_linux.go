package main

import (
	"os/exec"
	"syscall"
)

// stopWithParent has the kernel send the trainer SIGTERM when attnc dies,
// however it dies: SIGINT and SIGTERM attnc passes on itself, but a
// kill -9 of attnc would otherwise leave the trainer training on, holding
// the run's lock, with no one to report to. SIGTERM takes the trainer's
// usual way out: a checkpoint, summary.json and the resume command.
//
// Linux sends the signal when the thread that started the child exits,
// not the process; the caller keeps the goroutine that calls Start and
// Wait locked to its thread (runtime.LockOSThread), so that thread lives
// as long as the child is waited for.
func stopWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
