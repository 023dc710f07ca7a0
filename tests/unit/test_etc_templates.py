"""/etc/conf.d/hostname as part E writes it: the template of the task, rendered by Ansible."""
import os

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_hostname_file_ends_with_a_real_newline():
    loader = DataLoader()
    tasks = loader.load_from_file(os.path.join(ROOT, "roles", "configure", "tasks", "etc.yml"))
    [task] = [t for t in tasks if t["ansible.builtin.copy"].get("dest") == "/etc/conf.d/hostname"]
    content = Templar(loader=loader, variables={"gse_hostname": "gse-lab"}).template(
        trust_as_template(task["ansible.builtin.copy"]["content"]))
    # OpenRC sources the file: a literal backslash-n would make the hostname gse-labn.
    assert content == 'hostname="gse-lab"\n'
