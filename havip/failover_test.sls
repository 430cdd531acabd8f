# -*- coding: utf-8 -*-
# vim: ft=sls
# A live failover test of the havip cluster (run on the master), probing
# every service (each pool it reaches, on each of its VIPs) at once and
# reporting the outage per service (salt-run havip.failover_test's docs):
#
#   salt-run state.orchestrate havip.failover_test
#   salt-run state.orchestrate havip.failover_test \
#       pillar='{"failover_test": {"failure": "link_down", "client": "client1", "tgt": "lb*"}}'
#
# failover_test pillar keys (all optional): failure (kill_haproxy |
# stop_haproxy | kill_keepalived | link_down), client (the probing minion;
# default: the first node that is not a balancer), vip, rate (requests/s),
# tgt and tgt_type (the minions of the cluster to test, default '*' glob: a
# master with several clusters must name one).  The runner refuses any
# other key, naming the nearest known one.
# Needs the runner, the module and their helpers: salt-run saltutil.sync_all,
# salt '*' saltutil.sync_all
{%- set test = salt['pillar.get']('failover_test', {}) %}
{%- if test is not mapping %}
{{- raise('havip.failover_test: the failover_test pillar must be a mapping of options, got ' ~ test | tojson) }}
{%- endif %}

havip-failover-test-precheck:
  salt.runner:
    - name: havip.status
    - tgt: {{ test.get('tgt', '*') | tojson }}
    - tgt_type: {{ test.get('tgt_type', 'glob') | tojson }}

havip-failover-test-run:
  salt.runner:
    - name: havip.failover_test
    - kwarg: {{ test | tojson }}
    - require:
      - salt: havip-failover-test-precheck
