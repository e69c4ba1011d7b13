package train

import "embed"

// Source holds this package's Go source, which attnc train copies into
// the module it builds the trainer in (with the runtime import
// rewritten). Copies leave out this file and the tests.
//
//go:embed *.go
var Source embed.FS
