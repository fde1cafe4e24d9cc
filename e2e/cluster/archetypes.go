package cluster

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/pod-hardener/pod-hardener/internal/ociimage"
)

// Archetype is a workload shape that behaves like a popular image: one
// program (e2e/cmd/archetype) whose image config and Env say what it does.
type Archetype struct {
	Name  string
	Like  string // the popular image it behaves like
	Image Image
	Port  int32 // 0: no HTTP, Ready once running
}

// ArchetypeEnv prefixes the variables e2e/cmd/archetype reads.
const ArchetypeEnv = "ARCHETYPE_"

// Archetypes are the shapes the node tests and `make demo` run, all built
// from binary (a static e2e/cmd/archetype).
func Archetypes(binary string) []Archetype {
	img := func(repo string, env ...string) Image {
		return Image{Repo: "archetype/" + repo, Spec: ociimage.Spec{Binary: binary, Env: env}}
	}
	web := img("web-root", ArchetypeEnv+"LISTEN=:80", ArchetypeEnv+"WRITE=/var/cache/app,/var/run")
	web.Ports, web.Dirs = []string{"80/tcp"}, []string{"/var/cache/app", "/var/run"}
	app := img("app-root", ArchetypeEnv+"LISTEN=:8080", ArchetypeEnv+"WRITE=/tmp")
	app.Ports, app.Dirs = []string{"8080/tcp"}, []string{"/tmp"}
	node := img("named-user", ArchetypeEnv+"LISTEN=:3000", ArchetypeEnv+"UID=1000", "HOME=/home/node")
	node.User, node.Ports, node.WorkingDir = "node", []string{"3000/tcp"}, "/home/node"
	node.Dirs, node.DirOwner = []string{"/home/node"}, map[string]int{"/home/node": 1000}
	node.Passwd = "root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\n"
	node.Group = "root:x:0:\nnode:x:1000:\n"
	nonroot := img("numeric-nonroot", ArchetypeEnv+"LISTEN=:8080", ArchetypeEnv+"UID=65532")
	nonroot.User, nonroot.Ports = "65532", []string{"8080/tcp"}
	redis := img("volume-root", ArchetypeEnv+"LISTEN=:6379", ArchetypeEnv+"WRITE=/data")
	redis.Ports, redis.Volumes, redis.WorkingDir, redis.Dirs = []string{"6379/tcp"}, []string{"/data"}, "/data", []string{"/data"}
	low := img("nonroot-port-80", ArchetypeEnv+"LISTEN=:80", ArchetypeEnv+"UID=101")
	low.User, low.Ports = "101", []string{"80/tcp"}
	sleeper := img("sleeper-root")
	// postgres: root entrypoint that gives $PGDATA (its VOLUME) to uid 999
	// and drops to it; the server refuses root and makes $PGDATA 0700.
	pg := img("db-root-drop", ArchetypeEnv+"LISTEN=:5432", ArchetypeEnv+"DROP_TO=999:999", ArchetypeEnv+"NOT_ROOT=1",
		ArchetypeEnv+"DATA_ENV=PGDATA", "PGDATA=/var/lib/postgresql/data")
	pg.Ports, pg.Volumes, pg.Dirs = []string{"5432/tcp"}, []string{"/var/lib/postgresql/data"}, []string{"/var/lib/postgresql/data"}
	pg.Passwd = "root:x:0:0:root:/root:/sbin/nologin\npostgres:x:999:999::/var/lib/postgresql:/sbin/nologin\n"
	// jenkins/jenkins renumbered by a derived image: USER jenkins, whose
	// base layer's /etc/passwd says uid 1000 and whose upper layer (a
	// `usermod -u 1001`) says 1001; it needs 1001 and writes its VOLUME.
	jk := img("named-user-layered", ArchetypeEnv+"LISTEN=:8080", ArchetypeEnv+"UID=1001", ArchetypeEnv+"WRITE=/var/jenkins_home",
		"HOME=/var/jenkins_home", "JENKINS_HOME=/var/jenkins_home")
	jk.User, jk.Ports, jk.Volumes, jk.WorkingDir = "jenkins", []string{"8080/tcp", "50000/tcp"}, []string{"/var/jenkins_home"}, "/var/jenkins_home"
	jk.Dirs, jk.DirOwner = []string{"/var/jenkins_home"}, map[string]int{"/var/jenkins_home": 1001}
	jk.Base = map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\njenkins:x:1000:1000::/var/jenkins_home:/sbin/nologin\n",
		"etc/group":  "root:x:0:\njenkins:x:1000:\n",
	}
	jk.Passwd = "root:x:0:0:root:/root:/sbin/nologin\njenkins:x:1001:1001::/var/jenkins_home:/sbin/nologin\n"
	jk.Group = "root:x:0:\njenkins:x:1001:\n"
	// grafana: numeric USER 472 writing its data directory, here a VOLUME
	// owned by 472 in the image.
	gf := img("numeric-user-volume", ArchetypeEnv+"LISTEN=:3000", ArchetypeEnv+"UID=472", ArchetypeEnv+"WRITE=/var/lib/grafana")
	gf.User, gf.Ports, gf.Volumes = "472", []string{"3000/tcp"}, []string{"/var/lib/grafana"}
	gf.Dirs, gf.DirOwner = []string{"/var/lib/grafana"}, map[string]int{"/var/lib/grafana": 472}
	return []Archetype{
		{"web-root", "nginx", web, 80},
		{"app-root", "a typical app image", app, 8080},
		{"named-user", "node (USER node)", node, 3000},
		{"numeric-nonroot", "distroless nonroot", nonroot, 8080},
		{"volume-root", "redis", redis, 6379},
		{"nonroot-port-80", "nginx-unprivileged on port 80", low, 80},
		{"sleeper-root", "busybox sleep", sleeper, 0},
		{"db-root-drop", "postgres", pg, 5432},
		{"named-user-layered", "jenkins/jenkins, its user renumbered in a later layer", jk, 8080},
		{"numeric-user-volume", "grafana (USER 472)", gf, 3000},
	}
}

// Container is the archetype's container for an image reference: its
// port, and a readiness probe on /healthz where it serves HTTP.
func (a Archetype) Container(image string) corev1.Container {
	// FallbackToLogsOnError: the kubelet keeps the last log lines of a
	// crash in the pod's status, so the outcome does not depend on the
	// previous container's logs still being there when it is read (a crash
	// loop replaces them).
	c := corev1.Container{Name: a.Name, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}
	if a.Port != 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: a.Port}}
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(a.Port)}},
			PeriodSeconds: 1,
		}
	}
	return c
}

// Ready is the outcome of a pod that went Ready.
const Ready = "Ready"

// PodOutcome says what the kubelet made of a pod: Ready, its
// CreateContainerConfigError message, or a crash (exit code and the
// program's last log line); decided is false while it has not settled.
func PodOutcome(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) (result string, decided bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return Ready, true
		}
	}
	if len(p.Status.ContainerStatuses) == 0 {
		return "phase " + string(p.Status.Phase) + ", no container status", false
	}
	cs0 := p.Status.ContainerStatuses[0]
	if w := cs0.State.Waiting; w != nil && w.Reason == "CreateContainerConfigError" {
		// The message ends with the pod's generated name: left out, so the
		// recorded outcome is the same from run to run.
		msg, _, _ := strings.Cut(w.Message, " (pod: ")
		return w.Reason + ": " + msg, true
	}
	if term := cs0.LastTerminationState.Terminated; term != nil {
		// Both sources can miss the program's line: the kubelet may fail to
		// read the log it falls back to, and the previous container's log may
		// be gone. A crash loop crashes again, so such a reading is not
		// settled: the next crash is read instead.
		line := strings.TrimSpace(tailLines(strings.TrimSpace(term.Message), 1))
		if line == "" || strings.HasPrefix(term.Message, "Error on reading termination message") {
			line = lastLogLine(ctx, cs, p)
		}
		settled := !strings.HasPrefix(line, "unable to retrieve container logs") && !strings.HasPrefix(line, "(logs: ")
		return fmt.Sprintf("exit %d: %s", term.ExitCode, line), settled
	}
	return fmt.Sprintf("%+v", cs0.State), false
}

// lastLogLine reads the crashed container's last line through the API
// server, which asks the kubelet: what `kubectl logs --previous` shows.
func lastLogLine(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) string {
	tail := int64(1)
	b, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Previous: true, TailLines: &tail}).DoRaw(ctx)
	if err != nil {
		return "(logs: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(b))
}
