//go:build !linux

package main

import "os/exec"

// stopWithParent does nothing where the kernel cannot signal a child when
// its parent dies (there is no Pdeathsig outside Linux): a kill -9 of
// attnc leaves the trainer running until it ends, holding the run's lock,
// which names the trainer's own pid. SIGINT and SIGTERM sent to attnc
// still reach it.
func stopWithParent(*exec.Cmd) {}
