package mutate

import (
	"bytes"
	"errors"
	"strconv"

	kjson "sigs.k8s.io/json"
)

// Views of the fields the controls named after Pod Security Standards
// checks read (control_appArmorProfile.go and the others after it in
// profiles.ControlNames). As in pod.go, a nil pointer or slice is absent or
// null.

type seLinuxView struct {
	User string `json:"user"`
	Role string `json:"role"`
	Type string `json:"type"`
}

type appArmorView struct {
	Type string `json:"type"`
}

type sysctlView struct {
	Name string `json:"name"`
}

// containerHostsView: what a container asks of the node's network. Every
// container of every pod carries it, so it is small (64 bytes) and its
// parts decode the JSON only when it may hold what they look for: the
// ports, probes and lifecycle handlers of nearly every container cost no
// allocation. A key written with escapes (host\u0050ort) is decoded too,
// as the API server reads it.
type containerHostsView struct {
	Ports          portsView     `json:"ports"`
	LivenessProbe  handlerView   `json:"livenessProbe"`
	ReadinessProbe handlerView   `json:"readinessProbe"`
	StartupProbe   handlerView   `json:"startupProbe"`
	Lifecycle      lifecycleView `json:"lifecycle"`
}

// mayHold reports whether a JSON value may hold the quoted key, written
// with escapes or not.
func mayHold(b []byte, quotedKey string) bool {
	return bytes.Contains(b, []byte(quotedKey)) || bytes.Contains(b, []byte(`\u`))
}

// DecodeStrict decodes as decodePod does: keys case-sensitive, duplicate
// keys refused. Whatever reads part of a pod beside the engine uses it, so
// both read the same pod.
func DecodeStrict(b []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(b, v, kjson.DisallowDuplicateFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

type portsView []portView

func (p *portsView) UnmarshalJSON(b []byte) error {
	hostPorts := mayHold(b, `"hostPort"`)
	if !hostPorts && !mayHoldLowPort(b) {
		return nil
	}
	var ps []portView
	if err := DecodeStrict(b, &ps); err != nil {
		if !hostPorts {
			// Read only for its containerPorts, which image-aware
			// hardening can do without: a list the API server would refuse
			// is no reason for the engine to.
			return nil
		}
		return err
	}
	*p = ps
	return nil
}

type portView struct {
	HostPort int64 `json:"hostPort"`
	// ContainerPort is read for image-aware hardening, which needs only the
	// ports below 1024: a list whose ports all have four digits or more is
	// not decoded at all (mayHoldLowPort).
	ContainerPort portNumber `json:"containerPort"`
}

// portNumber reads a port leniently: anything but a positive JSON integer
// (an offline manifest's `containerPort: PORT`) reads as 0, unknown, since
// what is wrong there is for the API server to say, not a reason to refuse
// hardening.
type portNumber int32

func (n *portNumber) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(string(b), 10, 32)
	if err == nil && v > 0 {
		*n = portNumber(v)
	}
	return nil
}

// mayHoldLowPort reports whether a ports list may hold a containerPort
// below 1024 (or something that is not a plain number): only then is it
// decoded, so the usual 8080 costs no allocation.
func mayHoldLowPort(b []byte) bool {
	const key = `"containerPort"`
	for {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return false
		}
		b = b[i+len(key):]
		j := 0
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r' || b[j] == ':') {
			j++
		}
		d, v := 0, 0
		for j+d < len(b) && b[j+d] >= '0' && b[j+d] <= '9' && d < 5 {
			v = v*10 + int(b[j+d]-'0')
			d++
		}
		if v < 1024 {
			return true
		}
	}
}

// handlerView is a probe or a lifecycle handler: both reach a host with
// httpGet or tcpSocket. hosts is nil unless one of them has a host.
type handlerView struct {
	hosts *handlerHosts
}

type handlerHosts struct {
	HTTPGet   hostView `json:"httpGet"`
	TCPSocket hostView `json:"tcpSocket"`
}

type hostView struct {
	Host string `json:"host"`
}

func (h *handlerView) UnmarshalJSON(b []byte) error {
	if !mayHold(b, `"host"`) {
		return nil
	}
	var hs handlerHosts
	if err := DecodeStrict(b, &hs); err != nil {
		return err
	}
	if hs.HTTPGet.Host != "" || hs.TCPSocket.Host != "" {
		h.hosts = &hs
	}
	return nil
}

type lifecycleView struct {
	PostStart handlerView `json:"postStart"`
	PreStop   handlerView `json:"preStop"`
}

// volumeSources holds the volume sources Pod Security Standards restricted
// forbids (policy/check_restrictedVolumes.go lists them, and
// TestVolumeSourcesMatchPSS holds this list to the evaluator for every
// source k8s.io/api knows). The allowed ones (configMap, csi, downwardAPI,
// emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret)
// need no field: a volume with none of these is allowed, as one with no
// source at all is an emptyDir by the time admission sees it.
type volumeSources struct {
	HostPath             *struct{} `json:"hostPath"`
	GCEPersistentDisk    *struct{} `json:"gcePersistentDisk"`
	AWSElasticBlockStore *struct{} `json:"awsElasticBlockStore"`
	GitRepo              *struct{} `json:"gitRepo"`
	NFS                  *struct{} `json:"nfs"`
	ISCSI                *struct{} `json:"iscsi"`
	Glusterfs            *struct{} `json:"glusterfs"`
	RBD                  *struct{} `json:"rbd"`
	FlexVolume           *struct{} `json:"flexVolume"`
	Cinder               *struct{} `json:"cinder"`
	CephFS               *struct{} `json:"cephfs"`
	Flocker              *struct{} `json:"flocker"`
	FC                   *struct{} `json:"fc"`
	AzureFile            *struct{} `json:"azureFile"`
	VsphereVolume        *struct{} `json:"vsphereVolume"`
	Quobyte              *struct{} `json:"quobyte"`
	AzureDisk            *struct{} `json:"azureDisk"`
	PhotonPersistentDisk *struct{} `json:"photonPersistentDisk"`
	PortworxVolume       *struct{} `json:"portworxVolume"`
	ScaleIO              *struct{} `json:"scaleIO"`
	StorageOS            *struct{} `json:"storageos"`
}

// restricted names the volume's source when restricted forbids it, else "".
func (v *volumeSources) restricted() string {
	switch {
	case v.HostPath != nil:
		return "hostPath"
	case v.GCEPersistentDisk != nil:
		return "gcePersistentDisk"
	case v.AWSElasticBlockStore != nil:
		return "awsElasticBlockStore"
	case v.GitRepo != nil:
		return "gitRepo"
	case v.NFS != nil:
		return "nfs"
	case v.ISCSI != nil:
		return "iscsi"
	case v.Glusterfs != nil:
		return "glusterfs"
	case v.RBD != nil:
		return "rbd"
	case v.FlexVolume != nil:
		return "flexVolume"
	case v.Cinder != nil:
		return "cinder"
	case v.CephFS != nil:
		return "cephfs"
	case v.Flocker != nil:
		return "flocker"
	case v.FC != nil:
		return "fc"
	case v.AzureFile != nil:
		return "azureFile"
	case v.VsphereVolume != nil:
		return "vsphereVolume"
	case v.Quobyte != nil:
		return "quobyte"
	case v.AzureDisk != nil:
		return "azureDisk"
	case v.PhotonPersistentDisk != nil:
		return "photonPersistentDisk"
	case v.PortworxVolume != nil:
		return "portworxVolume"
	case v.ScaleIO != nil:
		return "scaleIO"
	case v.StorageOS != nil:
		return "storageos"
	}
	return ""
}
