"""The lab tier's shared fixtures: one cluster per test module.

A module's cluster is the seed's topology, deployed (`state.apply havip` on
every minion, the first VIP on its preferred balancer, every server UP in
every balancer's HAProxy), unless the module overrides a fixture it is made
from: ``cluster_topology`` (a parametrized one runs the module's tests on
each topology), ``cluster_master_overrides``
(extra salt-master settings), ``cluster_file_roots`` (directories of the
module's own states, e.g. an application for the pools, beside the
formula's) or ``cluster_deployed`` (False: hosts, master and minions up,
nothing applied).
"""

import pytest

from test.lab.cluster import SEED, all_up, running_cluster


@pytest.fixture(scope="module")
def cluster_topology():
    """The topology of the module's cluster."""
    return SEED


@pytest.fixture(scope="module")
def cluster_master_overrides():
    """Extra salt-master settings of the module's cluster."""
    return {}


@pytest.fixture(scope="module")
def cluster_file_roots():
    """Directories of the module's own states, served after the formula's."""
    return []


@pytest.fixture(scope="module")
def cluster_deployed():
    """Whether the module's cluster starts with the formula applied."""
    return True


@pytest.fixture(scope="module")
def cluster(salt_factories, tmp_path_factory, cluster_topology, cluster_master_overrides, cluster_file_roots,
            cluster_deployed):
    """The module's cluster, torn down after its last test."""
    with running_cluster(salt_factories, cluster_topology, tmp_path_factory.mktemp("pillar"),
                         cluster_master_overrides, cluster_file_roots) as cluster:
        if cluster_deployed:
            applied = cluster.apply()
            assert applied.returncode == 0, applied.stdout
            preferred = [cluster_topology.preferred_balancer]
            assert cluster.wait_for_holders(preferred) == preferred
            # A server whose nginx was not up yet at HAProxy's first check is
            # DOWN until rise checks pass, possibly after the apply returned.
            seen = cluster.wait_for_servers_up()
            assert all_up(seen), seen
        yield cluster


@pytest.fixture
def healthy(cluster):
    """The module's cluster with its first VIP on the preferred balancer;
    afterwards the topology's pillar applied everywhere, no balancer on
    standby, and the VIP back on the preferred balancer, serving."""
    preferred = [cluster.topology.preferred_balancer]
    assert cluster.wait_for_holders(preferred) == preferred
    yield cluster
    cluster.restore()
