package main

// `loadgen harden`: the CPU time of `pod-hardener harden` on one file of N
// pods, from the child's rusage (user + system), over a few runs.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// OfflineResult is one `pod-hardener harden` run.
type OfflineResult struct {
	Pods       int     `json:"pods"`
	FileBytes  int     `json:"fileBytes"`
	CPUSeconds float64 `json:"cpuSeconds"`
	UserSec    float64 `json:"userSeconds"`
	SysSec     float64 `json:"systemSeconds"`
	WallSec    float64 `json:"wallSeconds"`
	MaxRSSMiB  float64 `json:"maxRSSMiB"`
	OutBytes   int     `json:"outBytes"`
}

func hardenCmd(args []string) error {
	fs := flag.NewFlagSet("harden", flag.ExitOnError)
	binary := fs.String("binary", "bin/pod-hardener", "the pod-hardener binary")
	config := fs.String("config", "config.yaml", "config.yaml")
	n := fs.Int("pods", 1000, "pods in the file")
	runs := fs.Int("runs", 5, "runs (the median is judged)")
	output := fs.String("o", "yaml", "harden's output format")
	keep := fs.String("keep", "", "write the generated file here too")
	kind := fs.String("kind", "small", "pods: small (2 containers + 1 init container, resources, probes, env, mounts) or minimal (one container, name and image)")
	jsonOut := fs.String("json", "", "write the results as JSON to FILE")
	_ = fs.Parse(args)
	if *n < 1 || *n > 100000 || *runs < 1 || *runs > 50 {
		return fmt.Errorf("--pods must be 1..100000 and --runs 1..50")
	}

	if *kind != "small" && *kind != "minimal" {
		return fmt.Errorf("--kind: small or minimal")
	}
	data, err := podsYAML(*n, *kind == "minimal")
	if err != nil {
		return err
	}
	buf := bytes.NewBuffer(data)
	dir, err := os.MkdirTemp("", "pod-hardener-offline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "pods.yaml")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if *keep != "" {
		if err := os.WriteFile(*keep, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	var results []OfflineResult
	for i := 0; i < *runs; i++ {
		var out, errb bytes.Buffer
		cmd := exec.Command(*binary, "harden", "-f", file, "--config", *config, "-o", *output)
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 := time.Now()
		err := cmd.Run()
		wall := time.Since(t0)
		if err != nil {
			return fmt.Errorf("%s harden: %v\n%.2000s", *binary, err, errb.String())
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		r := OfflineResult{Pods: *n, FileBytes: buf.Len(), UserSec: cmd.ProcessState.UserTime().Seconds(),
			SysSec: cmd.ProcessState.SystemTime().Seconds(), WallSec: wall.Seconds(), MaxRSSMiB: float64(ru.Maxrss) / 1024, OutBytes: out.Len()}
		r.CPUSeconds = r.UserSec + r.SysSec
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "  run %d: CPU %.3f s (user %.3f, sys %.3f), wall %.3f s, max RSS %.1f MiB, output %d B\n",
			i+1, r.CPUSeconds, r.UserSec, r.SysSec, r.WallSec, r.MaxRSSMiB, r.OutBytes)
	}
	// The floor: what reading these documents into JSON and writing them
	// back as YAML costs with the same libraries, in this process.
	var floors []float64
	for i := 0; i < *runs; i++ {
		c, err := offlineFloor(buf.Bytes())
		if err != nil {
			return err
		}
		floors = append(floors, c)
	}
	floorCPU := median(floors)
	sorted := append([]OfflineResult(nil), results...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].CPUSeconds < sorted[j].CPUSeconds })
	med := sorted[len(sorted)/2]
	met := med.CPUSeconds < 0.2
	verdict := "MET"
	if !met {
		verdict = "MISSED"
	}
	fmt.Printf("offline: `pod-hardener harden -o %s` on %d %s pods (%d B of YAML): median CPU %.3f s (min %.3f, max %.3f), wall %.3f s, max RSS %.1f MiB\n",
		*output, *n, *kind, buf.Len(), med.CPUSeconds, sorted[0].CPUSeconds, sorted[len(sorted)-1].CPUSeconds, med.WallSec, med.MaxRSSMiB)
	fmt.Printf("  floor (YAML to JSON and back, sigs.k8s.io/yaml, in process): CPU %.3f s; harden = %.2fx the floor\n", floorCPU, med.CPUSeconds/floorCPU)
	if *n == 1000 {
		fmt.Printf("  %s target: under 0.2 s of CPU for 1,000 pods\n", verdict)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"machine": machine(), "kind": *kind, "output": *output, "runs": results, "median": med,
			"floorCPUSeconds": floorCPU, "floorRuns": floors, "targetMet": met}, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// podsYAML is n pods as a user writes them, one YAML document each:
// the small pod of the load, or a minimal one (a name and one image).
func podsYAML(n int, minimal bool) ([]byte, error) {
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		p := userPod(fmt.Sprintf("web-%04d", i), 2, 1, 0)
		if minimal {
			p = &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%04d", i)},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}}}
		}
		p.Namespace = reviewNamespace
		b, err := yaml.Marshal(p)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// offlineFloor reads every document into JSON as harden does (the
// apimachinery YAML reader, sigs.k8s.io/yaml) and writes it back as YAML,
// and returns the CPU time it took.
func offlineFloor(data []byte) (float64, error) {
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	yr := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out bytes.Buffer
	for {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return 0, err
		}
		y, err := yaml.JSONToYAML(j)
		if err != nil {
			return 0, err
		}
		out.WriteString("---\n")
		out.Write(y)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(r1.Utime) - tv(r0.Utime) + tv(r1.Stime) - tv(r0.Stime), nil
}
