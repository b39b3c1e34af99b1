package supervisor

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel stop a child when the supervisor dies, so an
// abrupt end of `microshop run` leaves no orphaned services holding ports.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
