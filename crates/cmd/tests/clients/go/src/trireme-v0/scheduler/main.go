// Command scheduler is a test scheduler on mesos-go v0's MesosSchedulerDriver (the libprocess
// wire protocol). It registers (or fails over with --framework-id), launches its tasks, prints
// one JSON line per driver callback on stdout and takes commands on stdin, one per line:
// "kill <task>", "reconcile [task...]", "message <task> <data>", "stop", "failover" (stop
// keeping the framework) and "abort". With -principal and -secret it authenticates first
// (SASL CRAM-MD5) and names that principal in its FrameworkInfo. A Rust test drives it
// (crates/cmd/tests/v0_go.rs, v0_auth.rs).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v0/auth"
	"github.com/mesos/mesos-go/api/v0/auth/sasl"
	_ "github.com/mesos/mesos-go/api/v0/auth/sasl/mech/crammd5" // the CRAM-MD5 mechanism
	_ "github.com/mesos/mesos-go/api/v0/detector/zoo"           // zk:// masters
	mesos "github.com/mesos/mesos-go/api/v0/mesosproto"
	util "github.com/mesos/mesos-go/api/v0/mesosutil"
	sched "github.com/mesos/mesos-go/api/v0/scheduler"
	"golang.org/x/net/context"
)

const (
	taskCpus = 0.1
	taskMem  = 16.0
)

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

// emit prints one event as a JSON line.
func emit(event string, fields map[string]interface{}) {
	if fields == nil {
		fields = map[string]interface{}{}
	}
	fields["event"] = event
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(fields)
}

// pending is a task not launched yet.
type pending struct {
	id       string
	command  string
	executor bool
}

type scheduler struct {
	sync.Mutex
	pending  []pending
	executor *mesos.ExecutorInfo
	// agents maps each task seen in an update to its agent, for framework messages.
	agents map[string]*mesos.SlaveID
}

func (s *scheduler) Registered(_ sched.SchedulerDriver, id *mesos.FrameworkID, master *mesos.MasterInfo) {
	emit("registered", map[string]interface{}{"framework_id": id.GetValue(), "master": master.GetId()})
}

func (s *scheduler) Reregistered(_ sched.SchedulerDriver, master *mesos.MasterInfo) {
	emit("reregistered", map[string]interface{}{"master": master.GetId()})
}

func (s *scheduler) Disconnected(sched.SchedulerDriver) { emit("disconnected", nil) }

func (s *scheduler) ResourceOffers(driver sched.SchedulerDriver, offers []*mesos.Offer) {
	emit("offers", map[string]interface{}{"n": len(offers)})
	for _, offer := range offers {
		tasks := s.fit(offer)
		if len(tasks) == 0 {
			_, _ = driver.DeclineOffer(offer.Id, &mesos.Filters{RefuseSeconds: proto.Float64(1)})
			continue
		}
		if _, err := driver.LaunchTasks([]*mesos.OfferID{offer.Id}, tasks, &mesos.Filters{RefuseSeconds: proto.Float64(1)}); err != nil {
			emit("error", map[string]interface{}{"message": "launch: " + err.Error()})
		}
	}
}

// fit takes as many pending tasks as the offer's cpus and mem hold.
func (s *scheduler) fit(offer *mesos.Offer) []*mesos.TaskInfo {
	cpus, mem := 0.0, 0.0
	for _, r := range offer.Resources {
		switch r.GetName() {
		case "cpus":
			cpus += r.GetScalar().GetValue()
		case "mem":
			mem += r.GetScalar().GetValue()
		}
	}
	s.Lock()
	defer s.Unlock()
	var tasks []*mesos.TaskInfo
	for len(s.pending) > 0 && cpus >= taskCpus && mem >= taskMem {
		p := s.pending[0]
		s.pending = s.pending[1:]
		cpus -= taskCpus
		mem -= taskMem
		task := &mesos.TaskInfo{
			Name:    proto.String(p.id),
			TaskId:  util.NewTaskID(p.id),
			SlaveId: offer.SlaveId,
			Resources: []*mesos.Resource{
				util.NewScalarResource("cpus", taskCpus),
				util.NewScalarResource("mem", taskMem),
			},
		}
		if p.executor {
			task.Executor = s.executor
		} else {
			task.Command = util.NewCommandInfo(p.command)
		}
		tasks = append(tasks, task)
	}
	return tasks
}

func (s *scheduler) OfferRescinded(_ sched.SchedulerDriver, id *mesos.OfferID) {
	emit("rescinded", map[string]interface{}{"offer_id": id.GetValue()})
}

func (s *scheduler) StatusUpdate(_ sched.SchedulerDriver, status *mesos.TaskStatus) {
	s.Lock()
	s.agents[status.GetTaskId().GetValue()] = status.GetSlaveId()
	s.Unlock()
	fields := map[string]interface{}{
		"task_id":  status.GetTaskId().GetValue(),
		"state":    status.GetState().String(),
		"message":  status.GetMessage(),
		"agent_id": status.GetSlaveId().GetValue(),
	}
	// Unset, GetReason would name the enum's zero value (REASON_COMMAND_EXECUTOR_FAILED).
	if status.Reason != nil {
		fields["reason"] = status.GetReason().String()
	}
	emit("update", fields)
}

func (s *scheduler) FrameworkMessage(_ sched.SchedulerDriver, executor *mesos.ExecutorID, _ *mesos.SlaveID, data string) {
	emit("framework_message", map[string]interface{}{"executor_id": executor.GetValue(), "data": data})
}

func (s *scheduler) SlaveLost(_ sched.SchedulerDriver, id *mesos.SlaveID) {
	emit("agent_lost", map[string]interface{}{"agent_id": id.GetValue()})
}

func (s *scheduler) ExecutorLost(_ sched.SchedulerDriver, id *mesos.ExecutorID, _ *mesos.SlaveID, status int) {
	emit("executor_lost", map[string]interface{}{"executor_id": id.GetValue(), "status": status})
}

func (s *scheduler) Error(_ sched.SchedulerDriver, message string) {
	emit("error", map[string]interface{}{"message": message})
}

// command runs one stdin line against the driver; it reports whether to keep reading.
func (s *scheduler) command(driver sched.SchedulerDriver, line string) bool {
	words := strings.Fields(line)
	if len(words) == 0 {
		return true
	}
	var err error
	switch words[0] {
	case "kill":
		if len(words) != 2 {
			err = fmt.Errorf("usage: kill <task>")
			break
		}
		_, err = driver.KillTask(util.NewTaskID(words[1]))
	case "reconcile":
		var statuses []*mesos.TaskStatus
		s.Lock()
		for _, id := range words[1:] {
			status := util.NewTaskStatus(util.NewTaskID(id), mesos.TaskState_TASK_STAGING)
			status.SlaveId = s.agents[id]
			statuses = append(statuses, status)
		}
		s.Unlock()
		_, err = driver.ReconcileTasks(statuses)
	case "message":
		if len(words) < 3 || s.executor == nil {
			err = fmt.Errorf("usage: message <task> <data> (needs --executor)")
			break
		}
		s.Lock()
		agent := s.agents[words[1]]
		s.Unlock()
		_, err = driver.SendFrameworkMessage(s.executor.ExecutorId, agent, strings.Join(words[2:], " "))
	case "stop":
		_, err = driver.Stop(false)
		return false
	case "failover":
		_, err = driver.Stop(true)
		return false
	case "abort":
		_, err = driver.Abort()
		return false
	default:
		err = fmt.Errorf("unknown command %q", words[0])
	}
	if err != nil {
		emit("error", map[string]interface{}{"message": err.Error()})
	}
	return true
}

func main() {
	master := flag.String("master", "127.0.0.1:5050", "master host:port or zk://...")
	name := flag.String("name", "trireme-v0-go", "framework name")
	tasks := flag.Int("tasks", 1, "long-running command tasks (sleep-<i>) to launch, plus one short task \"short\"")
	sleep := flag.Int("sleep", 300, "seconds each long task sleeps")
	executor := flag.String("executor", "", "path of the Go executor; when set, task \"exec\" runs on it")
	failoverTimeout := flag.Float64("failover-timeout", 0, "framework failover timeout in seconds")
	frameworkID := flag.String("framework-id", "", "fail over to this framework (launches no tasks)")
	checkpoint := flag.Bool("checkpoint", false, "ask agents to checkpoint the framework")
	ip := flag.String("ip", "127.0.0.1", "address the driver listens on for the master's messages")
	principal := flag.String("principal", "", "authenticate as this principal (with -secret)")
	secret := flag.String("secret", "", "the principal's secret")
	flag.Parse()

	s := &scheduler{agents: map[string]*mesos.SlaveID{}}
	if *frameworkID == "" {
		for i := 0; i < *tasks; i++ {
			s.pending = append(s.pending, pending{id: fmt.Sprintf("sleep-%d", i), command: fmt.Sprintf("sleep %d", *sleep)})
		}
		s.pending = append(s.pending, pending{id: "short", command: "true"})
	}
	if *executor != "" {
		s.executor = util.NewExecutorInfo(util.NewExecutorID("go-executor"), util.NewCommandInfo(*executor))
		s.executor.Name = proto.String("trireme-v0-go-executor")
		if *frameworkID == "" {
			s.pending = append(s.pending, pending{id: "exec", executor: true})
		}
	}

	info := &mesos.FrameworkInfo{
		User:            proto.String(""),
		Name:            proto.String(*name),
		FailoverTimeout: proto.Float64(*failoverTimeout),
		Checkpoint:      proto.Bool(*checkpoint),
	}
	if *frameworkID != "" {
		info.Id = util.NewFrameworkID(*frameworkID)
	}
	config := sched.DriverConfig{
		Scheduler:      s,
		Framework:      info,
		Master:         *master,
		BindingAddress: net.ParseIP(*ip),
	}
	if *principal != "" {
		info.Principal = proto.String(*principal)
		config.Credential = &mesos.Credential{Principal: proto.String(*principal), Secret: proto.String(*secret)}
		config.WithAuthContext = func(ctx context.Context) context.Context {
			ctx = auth.WithLoginProvider(ctx, sasl.ProviderName)
			return sasl.WithBindingAddress(ctx, net.ParseIP(*ip))
		}
	}
	driver, err := sched.NewMesosSchedulerDriver(config)
	if err != nil {
		emit("error", map[string]interface{}{"message": "driver: " + err.Error()})
		os.Exit(2)
	}
	if _, err := driver.Start(); err != nil {
		emit("error", map[string]interface{}{"message": "start: " + err.Error()})
		os.Exit(2)
	}
	go func() {
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() && s.command(driver, lines.Text()) {
		}
	}()
	status, err := driver.Join()
	fields := map[string]interface{}{"status": status.String()}
	if err != nil {
		fields["message"] = err.Error()
	}
	emit("exit", fields)
}
