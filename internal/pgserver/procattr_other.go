//go:build unix && !linux

package pgserver

import "syscall"

// sysProcAttr runs a child as cred (nil: as ourselves) in its own process group, so a
// terminal's Ctrl-C reaches only us. There is no parent-death signal outside Linux: a
// server whose parent dies keeps running until killed.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
