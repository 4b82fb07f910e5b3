# SPDX-License-Identifier: Apache-2.0
"""podman with cloison-runtime as its OCI runtime in the VM lab, shared by
test_lab_vm_isolation.py and test_lab_podman_checkpoint.py: the payload
lines that configure it ($P is the podman command line) and the host
files it needs."""
import os
import shutil


def setup(wrapper_env):
    """Payload lines: podman's policy and containers.conf (cgroupfs, no
    events, k8s-file logs, runtime `cloison` = /lab/rt-wrapper), the
    wrapper (podman gives the runtime a clean environment: it exports
    `wrapper_env`, "NAME=VALUE ...", then runs /lab/cloison-runtime), $P."""
    return r"""mkdir -p /etc/containers /var/tmp /tmp/pm
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > /etc/containers/policy.json
printf '[containers]\ndefault_ulimits = ["nofile=4096:4096"]\nlog_driver = "k8s-file"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\nruntime = "cloison"\n[engine.runtimes]\ncloison = ["/lab/rt-wrapper"]\n' > /tmp/pm/containers.conf
printf '#!/bin/sh\nexport %s\nexec /lab/cloison-runtime "$@"\n' > /lab/rt-wrapper
chmod +x /lab/rt-wrapper
export CONTAINERS_CONF=/tmp/pm/containers.conf
P="podman --root /tmp/pm/root --runroot /tmp/pm/runroot --storage-driver vfs --tmpdir /tmp/pm/tmp"
""" % wrapper_env


def files():
    """(host, lab) pairs for podman and conmon; those not installed here
    are left out."""
    out = []
    for tool in ("podman", "conmon"):
        path = shutil.which(tool) or "/usr/libexec/podman/" + tool
        if os.path.exists(path):
            out.append((path, "/usr/bin/" + tool))
    return out
