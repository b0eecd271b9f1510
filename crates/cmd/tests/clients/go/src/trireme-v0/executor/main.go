// Command executor is a test executor on mesos-go v0's MesosExecutorDriver, started by an agent
// for tasks whose TaskInfo names it. On LaunchTask it sends TASK_RUNNING; it echoes each
// framework message back prefixed with "echo: "; the message "finish" (or "finish <task>")
// finishes its tasks (TASK_FINISHED); KillTask answers TASK_KILLED; Shutdown stops the driver.
// It writes its pid to executor.pid in its sandbox, so tests can make sure it is gone.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	exec "github.com/mesos/mesos-go/api/v0/executor"
	mesos "github.com/mesos/mesos-go/api/v0/mesosproto"
	util "github.com/mesos/mesos-go/api/v0/mesosutil"
)

type executor struct {
	sync.Mutex
	tasks map[string]bool
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "trireme-v0-go-executor: "+format+"\n", args...)
}

func (e *executor) send(driver exec.ExecutorDriver, id string, state mesos.TaskState, message string) {
	status := util.NewTaskStatus(util.NewTaskID(id), state)
	status.Message = &message
	if _, err := driver.SendStatusUpdate(status); err != nil {
		logf("status update %s %s: %v", id, state, err)
	}
}

func (e *executor) Registered(_ exec.ExecutorDriver, info *mesos.ExecutorInfo, _ *mesos.FrameworkInfo, agent *mesos.SlaveInfo) {
	logf("registered %s on %s", info.GetExecutorId().GetValue(), agent.GetHostname())
}

func (e *executor) Reregistered(_ exec.ExecutorDriver, agent *mesos.SlaveInfo) {
	logf("reregistered on %s", agent.GetHostname())
}

func (e *executor) Disconnected(exec.ExecutorDriver) { logf("disconnected") }

func (e *executor) LaunchTask(driver exec.ExecutorDriver, task *mesos.TaskInfo) {
	id := task.GetTaskId().GetValue()
	e.Lock()
	e.tasks[id] = true
	e.Unlock()
	e.send(driver, id, mesos.TaskState_TASK_RUNNING, "running on the Go executor")
}

func (e *executor) KillTask(driver exec.ExecutorDriver, id *mesos.TaskID) {
	e.Lock()
	delete(e.tasks, id.GetValue())
	e.Unlock()
	e.send(driver, id.GetValue(), mesos.TaskState_TASK_KILLED, "killed by the Go executor")
}

func (e *executor) FrameworkMessage(driver exec.ExecutorDriver, data string) {
	if _, err := driver.SendFrameworkMessage("echo: " + data); err != nil {
		logf("framework message: %v", err)
	}
	words := strings.Fields(data)
	if len(words) == 0 || words[0] != "finish" {
		return
	}
	e.Lock()
	var done []string
	for id := range e.tasks {
		if len(words) == 1 || words[1] == id {
			done = append(done, id)
			delete(e.tasks, id)
		}
	}
	e.Unlock()
	for _, id := range done {
		e.send(driver, id, mesos.TaskState_TASK_FINISHED, "finished on request")
	}
}

func (e *executor) Shutdown(driver exec.ExecutorDriver) {
	logf("shutdown")
	_, _ = driver.Stop()
}

func (e *executor) Error(_ exec.ExecutorDriver, message string) { logf("error: %s", message) }

// bindingIP is LIBPROCESS_IP when the agent sets it, else loopback (where tests run agents).
func bindingIP() string {
	if ip := os.Getenv("LIBPROCESS_IP"); ip != "" {
		return ip
	}
	return "127.0.0.1"
}

func main() {
	flag.Parse() // glog's flags
	pidFile := filepath.Join(os.Getenv("MESOS_DIRECTORY"), "executor.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		logf("pid file: %v", err)
	}
	driver, err := exec.NewMesosExecutorDriver(exec.DriverConfig{
		Executor:       &executor{tasks: map[string]bool{}},
		BindingAddress: net.ParseIP(bindingIP()),
	})
	if err != nil {
		logf("driver: %v", err)
		os.Exit(2)
	}
	status, err := driver.Run()
	logf("driver exited: %s %v", status, err)
	if err != nil {
		os.Exit(1)
	}
}
