//go:build unix && !linux

package main

import "syscall"

// childProcAttr puts a child in its own process group, so that a terminal's Ctrl-C
// reaches only devrun, which then stops the children in order.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
