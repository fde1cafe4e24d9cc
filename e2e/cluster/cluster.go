// Package cluster runs a real Kubernetes control plane on loopback for the
// e2e tests and `make demo`: etcd and kube-apiserver (RBAC, PodSecurity,
// MutatingAdmissionWebhook), optionally kube-controller-manager,
// kube-scheduler and a kwok fake node, and the real `pod-hardener serve`
// binary registered as a webhook. Every process started is stopped by its
// PID in Stop, also when a test fails.
package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes version the binaries are built at.
const Version = "v1.37.2"

// DefaultBinDir is where e2e/build-binaries.sh caches the binaries.
func DefaultBinDir() string {
	if d := os.Getenv("POD_HARDENER_BIN_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "pod-hardener", "k8s-"+Version)
}

// serviceCIDR is the Services' range; the API server gives the kubernetes
// Service its first address.
const serviceCIDR, kubernetesServiceIP = "10.0.0.0/24", "10.0.0.1"

// Options configure a cluster.
type Options struct {
	BinDir string
	// Dir holds certificates, kubeconfigs, etcd data and logs.
	Dir string
	// Controllers adds kube-controller-manager, kube-scheduler and a kwok
	// node, so Deployments get Running pods.
	Controllers bool
	Log         io.Writer
	// Node, when set, adds a real node (kubelet and containerd) after the
	// control plane; where it cannot start, the cluster runs without it
	// and NodeErr says why.
	Node *NodeOptions
}

// Cluster is a running control plane.
type Cluster struct {
	Dir        string
	URL        string
	Kubeconfig string // admin (system:masters)
	ca         *authority
	opts       Options
	apiArgs    []string
	apiserver  *Process
	node       *Node
	// NodeErr is why the node asked for did not start (an
	// *ErrNodeUnavailable where the machine cannot run containers).
	NodeErr error

	mu    sync.Mutex
	procs []*Process
}

// Process is a started binary.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
}

// Start brings up the control plane and waits until it is ready.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.BinDir == "" {
		o.BinDir = DefaultBinDir()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	for _, b := range o.binaries() {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return nil, fmt.Errorf("%s not built in %s: run e2e/build-binaries.sh (about 15 minutes the first time)", b, o.BinDir)
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	c = &Cluster{Dir: o.Dir, opts: o}
	// A failed start stops what it started; `return nil, err` clears c, so
	// the deferred stop keeps its own pointer.
	started := c
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	if c.ca, err = newAuthority(); err != nil {
		return nil, err
	}
	pki := filepath.Join(o.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, err
	}
	if err := c.ca.writeCA(filepath.Join(pki, "ca.crt")); err != nil {
		return nil, err
	}
	apiHosts := []string{"127.0.0.1", "localhost"}
	if o.Node != nil {
		if reason := NodePrerequisites(o.BinDir); reason != "" {
			c.NodeErr = &ErrNodeUnavailable{Reason: reason}
		} else if n, perr := planNode(o.Dir); perr != nil {
			c.NodeErr = perr
		} else {
			c.node = n
			// Pods reach the API server at the kubernetes Service's address
			// (KUBERNETES_SERVICE_HOST), which the node forwards to it.
			apiHosts = append(apiHosts, n.HostIP, kubernetesServiceIP)
		}
	}
	if err := c.ca.issue(filepath.Join(pki, "apiserver"), "kube-apiserver", nil, apiHosts); err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kb, _ := x509.MarshalECPrivateKey(saKey)
	if err := os.WriteFile(filepath.Join(pki, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, err
	}

	etcdClient, etcdPeer, apiPort := freePort(), freePort(), freePort()
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if _, err := c.run("etcd", "--name=e2e", "--data-dir="+filepath.Join(o.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, etcdURL+"/health", nil, 30*time.Second); err != nil {
		return nil, fmt.Errorf("etcd: %w (log %s)", err, c.logOf("etcd"))
	}
	c.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	// The real node's kubelet is authorized as system:node:NAME.
	authz := "RBAC"
	if c.node != nil {
		authz = "Node,RBAC"
	}
	c.apiArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--endpoint-reconciler-type=none",
		"--authorization-mode=" + authz,
		"--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook,PodSecurity",
		"--allow-privileged=true",
		"--cert-dir=" + filepath.Join(o.Dir, "apiserver-certs"),
		"--v=1"}
	if c.node != nil {
		// The kubelet authenticates as system:node:NAME; the API server
		// reaches the kubelet (logs, exec) at its InternalIP with a client
		// certificate the kubelet's CA trusts.
		if err := c.ca.issueClient(filepath.Join(pki, "apiserver-kubelet-client"), "kube-apiserver-kubelet-client", []string{"system:masters"}); err != nil {
			return nil, err
		}
		c.apiArgs = append(c.apiArgs,
			"--kubelet-client-certificate="+filepath.Join(pki, "apiserver-kubelet-client.crt"),
			"--kubelet-client-key="+filepath.Join(pki, "apiserver-kubelet-client.key"),
			"--kubelet-preferred-address-types=InternalIP",
			// No kube-proxy: the API server calls a webhook Service (deploy/)
			// at one of its endpoints' pod IPs instead of the ClusterIP.
			"--enable-aggregator-routing=true")
	}
	if c.apiserver, err = c.run("kube-apiserver", c.apiArgs...); err != nil {
		return nil, err
	}
	if c.Kubeconfig, err = c.WriteKubeconfig("admin", "admin", []string{"system:masters"}); err != nil {
		return nil, err
	}
	tlsCfg, err := c.clientTLS("admin")
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, c.URL+"/readyz", tlsCfg, 90*time.Second); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w (log %s)", err, c.logOf("kube-apiserver"))
	}
	if o.Controllers {
		if err := c.startControllers(ctx, pki); err != nil {
			return nil, err
		}
	}
	if c.node != nil {
		if err := c.startNode(ctx, pki); err != nil {
			c.node.stop()
			c.node, c.NodeErr = nil, fmt.Errorf("starting the real node: %w", err)
		}
	}
	return c, nil
}

func (o Options) binaries() []string {
	b := []string{"etcd", "kube-apiserver"}
	if o.Controllers {
		b = append(b, "kube-controller-manager", "kube-scheduler", "kwok")
	}
	return b
}

func (c *Cluster) startControllers(ctx context.Context, pki string) error {
	if _, err := c.run("kube-controller-manager",
		"--kubeconfig="+c.Kubeconfig,
		"--controllers=*",
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "ca.crt"),
		"--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--use-service-account-credentials=false",
		"--v=1"); err != nil {
		return err
	}
	if _, err := c.run("kube-scheduler", "--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0", "--v=1"); err != nil {
		return err
	}
	stage := filepath.Join(c.opts.BinDir, "kwok-stage")
	args := []string{"--kubeconfig=" + c.Kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-lease-duration-seconds=40", "--server-address=127.0.0.1:" + strconv.Itoa(freePort())}
	// Stages: nodes become Ready and keep a heartbeat; pods bound to them
	// go Running (and complete, or go when deleted), as with a kubelet.
	for _, d := range []string{"node/fast", "node/heartbeat", "pod/fast"} {
		matches, _ := filepath.Glob(filepath.Join(stage, d, "*.yaml"))
		n := 0
		for _, m := range matches {
			if filepath.Base(m) != "kustomization.yaml" {
				args = append(args, "--config="+m)
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("kwok stages %s not found under %s: run e2e/build-binaries.sh", d, stage)
		}
	}
	_, err := c.run("kwok", args...)
	return err
}

// RestartAPIServer stops kube-apiserver and starts it again with the same
// flags, port and etcd, and waits until it is ready: what clients (the
// webhook's namespace informer) see as the API server going away and
// coming back.
func (c *Cluster) RestartAPIServer(ctx context.Context, down time.Duration) error {
	c.apiserver.Stop(2 * time.Second) // then SIGKILL: a crash as much as a restart
	time.Sleep(down)
	p, err := c.Run("kube-apiserver-restarted", filepath.Join(c.opts.BinDir, "kube-apiserver"), c.apiArgs...)
	if err != nil {
		return err
	}
	c.apiserver = p
	tlsCfg, err := c.clientTLS("admin")
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, c.URL+"/readyz", tlsCfg, 90*time.Second); err != nil {
		return fmt.Errorf("kube-apiserver after restart: %w (log %s)", err, p.Log)
	}
	return nil
}

// run starts a binary from BinDir with its output in Dir/logs.
func (c *Cluster) run(name string, args ...string) (*Process, error) {
	return c.Run(name, filepath.Join(c.opts.BinDir, name), args...)
}

// Run starts any binary and stops it with the cluster.
func (c *Cluster) Run(name, path string, args ...string) (*Process, error) {
	logs := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logs, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a stop reaches its children too.
	// The kernel kills it with this process (the demo keeps a process
	// running for as long as its cluster runs).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	fmt.Fprintf(c.opts.Log, "e2e: started %s (pid %d, log %s)\n", name, cmd.Process.Pid, logPath)
	p := &Process{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// Stop ends a process: SIGTERM, then SIGKILL after the grace period.
func (p *Process) Stop(grace time.Duration) {
	if p == nil || p.Cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Node returns the running real node, or nil (NodeErr says why).
func (c *Cluster) Node() *Node { return c.node }

// Stop stops every process, newest first; a node is torn down first, since
// its pods outlive the kubelet.
func (c *Cluster) Stop() {
	if c.node != nil {
		c.node.stop()
	}
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop(10 * time.Second)
	}
}

// PIDs lists the running processes, for `make demo-down`.
func (c *Cluster) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, p := range c.procs {
		out[p.Name] = p.Cmd.Process.Pid
	}
	return out
}

func (c *Cluster) logOf(name string) string { return filepath.Join(c.Dir, "logs", name+".log") }

// RestConfig returns a client config for a kubeconfig.
func RestConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// Client returns a clientset for a kubeconfig.
func Client(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := RestConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// WriteKubeconfig issues a client certificate for user (with groups as
// organizations) and writes a kubeconfig for it.
func (c *Cluster) WriteKubeconfig(file, user string, groups []string) (string, error) {
	return c.writeKubeconfigAt(file, user, groups, c.URL)
}

// writeKubeconfigAt is WriteKubeconfig for a client that reaches the API
// server at another address (the node, through its proxy).
func (c *Cluster) writeKubeconfigAt(file, user string, groups []string, server string) (string, error) {
	pki := filepath.Join(c.Dir, "pki")
	base := filepath.Join(pki, "user-"+file)
	if err := c.ca.issueClient(base, user, groups); err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: filepath.Join(pki, "ca.crt")}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: base + ".crt", ClientKey: base + ".key"}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: user}
	cfg.CurrentContext = "e2e"
	path := filepath.Join(c.Dir, file+".kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

func (c *Cluster) clientTLS(file string) (*tls.Config, error) {
	base := filepath.Join(c.Dir, "pki", "user-"+file)
	cert, err := tls.LoadX509KeyPair(base+".crt", base+".key")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.cert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil
}

func waitHTTP(ctx context.Context, url string, tlsCfg *tls.Config, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

// FreePort returns a free loopback TCP port.
func FreePort() int { return freePort() }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// authority is the cluster's one CA: serving and client certificates.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newAuthority() (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "e2e-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &authority{cert: cert, key: key}, err
}

func (a *authority) writeCA(path string) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw}), 0o644)
}

func (a *authority) issue(base, cn string, orgs, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(base+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func (a *authority) issueClient(base, user string, groups []string) error {
	return a.issue(base, user, groups, nil)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
