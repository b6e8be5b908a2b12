package pgserver

import "syscall"

// sysProcAttr runs a child as cred (nil: as ourselves) in its own process group, so a
// terminal's Ctrl-C reaches only us, and has the kernel kill it if we die first.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
