package main

import "syscall"

// childProcAttr puts a child in its own process group, so that a terminal's Ctrl-C
// reaches only devrun, which then stops the children in order. The parent-death
// signal stops the child gracefully should devrun itself be killed.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
