# -*- coding: utf-8 -*-
# vim: ft=sls
# A live failover test of the havip cluster (run on the master):
#
#   salt-run state.orchestrate havip.failover_test
#   salt-run state.orchestrate havip.failover_test \
#       pillar='{"failover_test": {"failure": "link_down", "client": "client1"}}'
#
# failover_test pillar keys (all optional): failure (kill_haproxy |
# stop_haproxy | kill_keepalived | link_down), client (the probing minion;
# default: the first node that is not a balancer), vip, rate (requests/s).
# Needs the runner, the module and their helpers: salt-run saltutil.sync_all,
# salt '*' saltutil.sync_all
{%- set test = salt['pillar.get']('failover_test', {}) %}

havip-failover-test-precheck:
  salt.runner:
    - name: havip.status

havip-failover-test-run:
  salt.runner:
    - name: havip.failover_test
{%- for key in ('failure', 'client', 'vip', 'rate') if key in test %}
    - {{ key }}: {{ test[key] | json }}
{%- endfor %}
    - require:
      - salt: havip-failover-test-precheck
