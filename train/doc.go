// Package train is the training harness: synthetic tasks, batching, the
// optimizer and schedules, the loop, evaluation, checkpoints and metrics.
// It sits below generated code and imports only runtime.
package train
