package bench

import "syscall"

// childProcAttr gives a child its own process group and a parent-death signal,
// so that an interrupted benchmark leaves no api or projector behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
