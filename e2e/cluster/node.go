package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pod-hardener/pod-hardener/internal/ociimage"
)

// NodeTaint keeps the suite's other workloads (scheduled for the kwok
// node, with images nobody can pull here) off the real node; what is meant
// for it tolerates the taint.
const NodeTaint = "pod-hardener.io/real-node"

// NodeOptions ask for a real node: the kubelet and containerd, in a
// network namespace of the test's own.
type NodeOptions struct {
	// Pause is a static binary that holds a pod's namespaces; it becomes
	// the sandbox image.
	Pause string
	// Untainted registers the node without NodeTaint, so any pod may land
	// on it (the demo, where it is the only node).
	Untainted bool
}

// PrepareNode builds what a node needs from the repository at root (the
// pause program, into dir) and returns the options asking for one.
func PrepareNode(root, dir string) (*NodeOptions, error) {
	pause := filepath.Join(dir, "pause")
	if err := BuildStatic(root, "./e2e/cmd/pause", pause); err != nil {
		return nil, err
	}
	return &NodeOptions{Pause: pause}, nil
}

// Node is a kubelet and a containerd running in their own network
// namespace, joined to the host by a veth pair: the API server reaches
// the kubelet at NodeIP, and they reach the API server and the registry
// at HostIP. Nothing in it routes off the machine.
type Node struct {
	Name     string
	NetNS    string
	HostIP   string // host end of the veth pair
	NodeIP   string // the node's end, its InternalIP
	PodCIDR  string
	Registry *Registry
	// Ready is how long the kubelet took from start to the node's Ready.
	Ready time.Duration

	dir        string
	idx        int
	hostVeth   string
	cgroupRoot string
	sysctls    map[string]string
	proxy      net.Listener
	containerd *Process
	kubelet    *Process
	c          *Cluster
	stopOnce   sync.Once
}

// ErrNodeUnavailable marks a machine that cannot run containers (not root,
// no containerd, no network namespaces...): node tests skip with it.
type ErrNodeUnavailable struct{ Reason string }

func (e *ErrNodeUnavailable) Error() string { return "no real node here: " + e.Reason }

// nodeSysctls are the host-wide settings the kubelet changes at start
// (and the network ones the bridge plugin changes are per namespace).
var nodeSysctls = []string{"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes"}

// NodePrerequisites says why this machine cannot run the node, or "".
func NodePrerequisites(binDir string) string {
	if os.Geteuid() != 0 {
		return "not root (containerd, the kubelet and network namespaces need root)"
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ip", "nsenter", "iptables", "ctr"} {
		if _, err := exec.LookPath(b); err != nil {
			return b + " not installed: run e2e/install-node-deps.sh (make test does)"
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			return "CNI plugin " + p + " not in /usr/lib/cni: run e2e/install-node-deps.sh (make test does)"
		}
	}
	if _, err := os.Stat(filepath.Join(binDir, "kubelet")); err != nil {
		return "kubelet not built in " + binDir + ": run e2e/build-binaries.sh (make test does)"
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
		if _, err2 := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err2 != nil {
			return "no cgroup hierarchy mounted at /sys/fs/cgroup"
		}
	}
	return ""
}

// planNode picks the node's addresses before the API server's serving
// certificate is issued (it names HostIP): a /30 for the veth pair in
// 10.200.0.0/16 and a /24 for pods in 10.201.0.0/16, neither in use here.
func planNode(dir string) (*Node, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	used := func(cidr string) bool {
		_, n, _ := net.ParseCIDR(cidr)
		for _, a := range addrs {
			if ip, _, err := net.ParseCIDR(a.String()); err == nil && n.Contains(ip) {
				return true
			}
		}
		return false
	}
	for try := 0; try < 64; try++ {
		r, err := rand.Int(rand.Reader, big.NewInt(250))
		if err != nil {
			return nil, err
		}
		i := int(r.Int64()) + 1
		veth := fmt.Sprintf("10.200.%d.0/30", i)
		pods := fmt.Sprintf("10.201.%d.0/24", i)
		if used(veth) || used(pods) {
			continue
		}
		if _, err := os.Stat("/run/netns/ph-e2e-" + strconv.Itoa(i)); err == nil {
			continue
		}
		return &Node{
			Name: "e2e-node", NetNS: "ph-e2e-" + strconv.Itoa(i), idx: i,
			HostIP: fmt.Sprintf("10.200.%d.1", i), NodeIP: fmt.Sprintf("10.200.%d.2", i),
			PodCIDR: pods, hostVeth: "phh" + strconv.Itoa(i),
			cgroupRoot: "/pod-hardener-e2e-" + strconv.Itoa(i),
			dir:        filepath.Join(dir, "node"),
		}, nil
	}
	return nil, errors.New("no free 10.200.x.0/30 for the node's veth pair")
}

func ipCmd(args ...string) error {
	if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

// startNode brings the node up and waits for it to be Ready. The network
// namespace and veth pair come first; a failure there means the machine
// cannot do it (ErrNodeUnavailable).
func (c *Cluster) startNode(ctx context.Context, pki string) error {
	n := c.node
	n.c = c
	for _, d := range []string{"containerd", "kubelet", "cni", "cni-ipam", "pod-logs", "certs.d"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := ipCmd("netns", "add", n.NetNS); err != nil {
		return &ErrNodeUnavailable{Reason: "cannot create a network namespace: " + err.Error()}
	}
	nodeVeth := "phn" + strconv.Itoa(n.idx)
	for _, args := range [][]string{
		{"link", "add", n.hostVeth, "type", "veth", "peer", "name", nodeVeth, "netns", n.NetNS},
		{"addr", "add", n.HostIP + "/30", "dev", n.hostVeth},
		{"link", "set", n.hostVeth, "up"},
		{"-n", n.NetNS, "addr", "add", n.NodeIP + "/30", "dev", nodeVeth},
		{"-n", n.NetNS, "link", "set", nodeVeth, "up"},
		{"-n", n.NetNS, "link", "set", "lo", "up"},
		// The host reaches pods through the node; the route goes with the veth.
		{"route", "add", n.PodCIDR, "via", n.NodeIP, "dev", n.hostVeth},
	} {
		if err := ipCmd(args...); err != nil {
			return &ErrNodeUnavailable{Reason: "cannot wire the node's network namespace: " + err.Error()}
		}
	}
	if err := n.startAPIProxy(c.URL); err != nil {
		return err
	}
	// No kube-proxy runs: one DNAT rule in the node's namespace takes pods'
	// connections to the kubernetes Service (in-cluster clients, such as
	// deploy/'s webhook) to the API proxy.
	if b, err := exec.Command("ip", "netns", "exec", n.NetNS, "iptables", "-t", "nat", "-A", "PREROUTING",
		"-d", kubernetesServiceIP+"/32", "-p", "tcp", "--dport", "443",
		"-j", "DNAT", "--to-destination", n.proxy.Addr().String()).CombinedOutput(); err != nil {
		return fmt.Errorf("node: routing the kubernetes Service to the API server: %v: %s", err, strings.TrimSpace(string(b)))
	}
	var err error
	if n.Registry, err = StartRegistry(n.HostIP + ":0"); err != nil {
		return err
	}
	pause, err := n.Registry.Push(ctx, Image{Repo: "pause", Spec: ociimage.Spec{Binary: c.opts.Node.Pause}})
	if err != nil {
		return err
	}
	if err := n.startContainerd(ctx, pause); err != nil {
		return err
	}
	if err := n.makeCgroupRoot(); err != nil {
		return &ErrNodeUnavailable{Reason: "cannot create the kubelet's cgroup root: " + err.Error()}
	}
	n.sysctls = readSysctls()
	return n.startKubelet(ctx, pki)
}

// startAPIProxy forwards HostIP:port to the API server on loopback, which
// the node's namespace cannot reach.
func (n *Node) startAPIProxy(apiURL string) error {
	l, err := net.Listen("tcp", n.HostIP+":0")
	if err != nil {
		return fmt.Errorf("node: API proxy: %w", err)
	}
	n.proxy = l
	target := strings.TrimPrefix(apiURL, "https://")
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return nil
}

func (n *Node) inNetNS(name, bin string, args ...string) (*Process, error) {
	return n.c.Run(name, "nsenter", append([]string{"--net=/run/netns/" + n.NetNS, "--", bin}, args...)...)
}

func (n *Node) socket() string { return filepath.Join(n.dir, "containerd", "containerd.sock") }

func (n *Node) startContainerd(ctx context.Context, pauseRef string) error {
	cd := filepath.Join(n.dir, "containerd")
	hostDir := filepath.Join(n.dir, "certs.d", n.Registry.Addr)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return err
	}
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+n.Registry.Addr, "http://"+n.Registry.Addr)
	if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		return err
	}
	// isDefaultGateway: pods route back to the host through the node (the
	// node itself routes nowhere else).
	cni := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": %q, "plugins": [{"type": "bridge", "bridge": "phbr0", "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}}]}
`, n.NetNS, n.PodCIDR, filepath.Join(n.dir, "cni-ipam"))
	if err := os.WriteFile(filepath.Join(n.dir, "cni", "10-bridge.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	// restrict_oom_score_adj: this machine's processes lack
	// CAP_SYS_RESOURCE, and runc fails every sandbox without it.
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, filepath.Join(cd, "root"), filepath.Join(cd, "state"), n.socket(), filepath.Join(cd, "opt"),
		pauseRef, filepath.Join(n.dir, "cni"), filepath.Join(n.dir, "certs.d"))
	path := filepath.Join(cd, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	p, err := n.inNetNS("containerd", "containerd", "--config", path)
	if err != nil {
		return err
	}
	n.containerd = p
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.Exited() {
			return fmt.Errorf("containerd exited at start (log %s): %s", p.Log, lastLines(p.Log, 5))
		}
		if err := exec.Command("ctr", "--address", n.socket(), "version").Run(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("containerd not serving on %s after 60s (log %s): %s", n.socket(), p.Log, lastLines(p.Log, 5))
}

// makeCgroupRoot gives the kubelet a cgroup root of its own, so teardown
// can find every process of every pod and remove what it created.
func (n *Node) makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, n.cgroupRoot)
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if filepath.Base(h) == "cpuset" {
			// A new cpuset has no CPUs or memory nodes until given its parent's.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// cgroupHierarchies lists the mounted cgroup v1 hierarchies, or the one
// cgroup v2 root.
func cgroupHierarchies() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (n *Node) startKubelet(ctx context.Context, pki string) error {
	c := n.c
	kdir := filepath.Join(n.dir, "kubelet")
	base := filepath.Join(pki, "kubelet-serving")
	if err := c.ca.issue(base, n.Name, nil, []string{n.NodeIP}); err != nil {
		return err
	}
	kc, err := c.writeKubeconfigAt("kubelet", "system:node:"+n.Name, []string{"system:nodes"}, "https://"+n.proxy.Addr().String())
	if err != nil {
		return err
	}
	taints := fmt.Sprintf("registerWithTaints:\n- {key: %s, value: \"true\", effect: NoSchedule}", NodeTaint)
	if c.opts.Node.Untainted {
		taints = ""
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %s
containerRuntimeEndpoint: unix://%s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
failSwapOn: false
resolvConf: ""
podLogsDir: %s
%s
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 40
`, n.cgroupRoot, n.socket(), n.NodeIP, base+".crt", base+".key", filepath.Join(pki, "ca.crt"),
		filepath.Join(n.dir, "pod-logs"), taints)
	path := filepath.Join(kdir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	start := time.Now()
	p, err := n.inNetNS("kubelet", filepath.Join(c.opts.BinDir, "kubelet"),
		"--config="+path, "--kubeconfig="+kc, "--root-dir="+filepath.Join(kdir, "root"),
		"--cert-dir="+filepath.Join(kdir, "pki"), "--hostname-override="+n.Name, "--node-ip="+n.NodeIP, "--v=2")
	if err != nil {
		return err
	}
	n.kubelet = p
	admin, err := Client(c.Kubeconfig)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(120 * time.Second)
	last := "not registered"
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.Exited() {
			return fmt.Errorf("kubelet exited at start (log %s): %s", p.Log, lastLines(p.Log, 8))
		}
		node, err := admin.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil {
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					if cond.Status == corev1.ConditionTrue {
						n.Ready = time.Since(start)
						return nil
					}
					last = cond.Reason + ": " + cond.Message
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("node %s not Ready after 120s (%s; log %s): %s", n.Name, last, p.Log, lastLines(p.Log, 8))
}

// stop tears the node down and puts the host back: the kubelet, every pod
// process (found in the kubelet's cgroup root), containerd and its shims
// are stopped by PID, the mounts under the node's directory and the pods'
// network namespaces are removed, then the node's namespace (which takes
// the veth pair and route with it), the cgroups, and the sysctls the
// kubelet changed are put back.
func (n *Node) stop() {
	n.stopOnce.Do(func() {
		podNetNS := n.podNetNS()
		n.kubelet.Stop(10 * time.Second)
		n.killCgroupProcs()
		n.containerd.Stop(10 * time.Second)
		n.killShims()
		if n.proxy != nil {
			n.proxy.Close()
		}
		n.Registry.Close()
		n.unmountUnder(n.dir)
		for _, p := range podNetNS {
			if _, err := os.Stat(p); err == nil {
				_ = syscall.Unmount(p, syscall.MNT_DETACH)
				_ = os.Remove(p)
			}
		}
		if n.NetNS != "" {
			_ = ipCmd("netns", "del", n.NetNS)
		}
		n.removeCgroupRoot()
		restoreSysctls(n.sysctls)
		matches, _ := filepath.Glob("/var/lib/cni/results/" + n.NetNS + "-*")
		for _, m := range matches {
			_ = os.Remove(m)
		}
	})
}

// podNetNS asks containerd which network namespaces its sandboxes hold,
// so a teardown that has to kill them still removes those namespaces.
func (n *Node) podNetNS() []string {
	if n.containerd == nil || n.containerd.Exited() {
		return nil
	}
	out, err := exec.Command("ctr", "--address", n.socket(), "-n", "k8s.io", "containers", "ls", "-q").Output()
	if err != nil {
		return nil
	}
	var paths []string
	for _, id := range strings.Fields(string(out)) {
		b, err := exec.Command("ctr", "--address", n.socket(), "-n", "k8s.io", "containers", "info", id).Output()
		if err != nil {
			continue
		}
		var info struct {
			Spec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string } `json:"namespaces"`
				} `json:"linux"`
			} `json:"Spec"`
		}
		if json.Unmarshal(b, &info) != nil {
			continue
		}
		for _, ns := range info.Spec.Linux.Namespaces {
			if ns.Type == "network" && (strings.HasPrefix(ns.Path, "/var/run/netns/") || strings.HasPrefix(ns.Path, "/run/netns/")) {
				paths = append(paths, ns.Path)
			}
		}
	}
	return paths
}

// killCgroupProcs kills every process under the kubelet's cgroup root:
// the pods' containers, which outlive the kubelet and containerd.
func (n *Node) killCgroupProcs() {
	for round := 0; round < 20; round++ {
		pids := map[int]bool{}
		for _, h := range cgroupHierarchies() {
			_ = filepath.WalkDir(filepath.Join(h, n.cgroupRoot), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
						pids[pid] = true
					}
				}
				return nil
			})
		}
		if len(pids) == 0 {
			return
		}
		for pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killShims stops the runc shims containerd started for this node (they
// run in their own process groups, named by this node's socket).
func (n *Node) killShims() {
	sock := n.socket()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "containerd-shim") {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == sock {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// unmountUnder unmounts every mount point below dir, deepest first: the
// kubelet's volume tmpfs, containerd's rootfs overlays and sandbox shm.
func (n *Node) unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, unescapeMount(fields[4]))
		}
	}
	f.Close()
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroupRoot removes the kubelet's cgroups, children first.
func (n *Node) removeCgroupRoot() {
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, n.cgroupRoot)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

// HostSysctls are the host settings the kubelet changes, as they were
// before it started: teardown puts them back.
func (n *Node) HostSysctls() map[string]string { return n.sysctls }

// ReadSysctl reads a host sysctl (dotted name) as it is now.
func ReadSysctl(k string) string {
	b, _ := os.ReadFile(sysctlPath(k))
	return strings.TrimSpace(string(b))
}

func sysctlPath(k string) string { return "/proc/sys/" + strings.ReplaceAll(k, ".", "/") }

func readSysctls() map[string]string {
	out := map[string]string{}
	for _, k := range nodeSysctls {
		if b, err := os.ReadFile(sysctlPath(k)); err == nil {
			out[k] = strings.TrimSpace(string(b))
		}
	}
	return out
}

func restoreSysctls(saved map[string]string) {
	for k, v := range saved {
		if b, err := os.ReadFile(sysctlPath(k)); err == nil && strings.TrimSpace(string(b)) != v {
			_ = os.WriteFile(sysctlPath(k), []byte(v), 0o644)
		}
	}
}

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tailLines(string(b), n)
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
