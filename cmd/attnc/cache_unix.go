//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// checkOwner returns an error unless fi, the file p, belongs to the user
// running attnc.
func checkOwner(p string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("%s belongs to user %d, not to you (user %d), so attnc will not run programs from it: remove it, or set ATTNC_CACHE to a private directory", p, st.Uid, uid)
	}
	return nil
}

// userTag names the user in the fallback cache directory's name.
func userTag() string { return strconv.Itoa(os.Getuid()) }
