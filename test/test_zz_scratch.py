import json, os, time, pathlib
import pytest
from test.lab.cluster import SEED, running_cluster

@pytest.mark.lab
def test_scratch(salt_factories, tmp_path_factory):
    with running_cluster(salt_factories, SEED, tmp_path_factory.mktemp("pillar")) as c:
        r = c.salt_cli.run("saltutil.sync_all", minion_tgt="*")
        res = c.apply()
        info = {"config_dir": c.master.config_dir, "hosts": {n: c.host(n).pid for n in SEED.hosts},
                "apply_rc": res.returncode}
        pathlib.Path("/tmp/scratch/info.json").write_text(json.dumps(info))
        deadline = time.time() + 3600
        while not os.path.exists("/tmp/scratch/stop") and time.time() < deadline:
            time.sleep(1)
