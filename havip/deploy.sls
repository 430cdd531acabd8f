# -*- coding: utf-8 -*-
# vim: ft=sls
# A rolling deploy of the havip pillar as it is now (run on the master):
#
#   salt-run state.orchestrate havip.deploy
#   salt-run state.orchestrate havip.deploy pillar='{"deploy": {"client": "client1", "tgt": "lb*"}}'
#
# One node at a time, each out of service while it is applied: backends are
# drained in HAProxy, applied, checked and readied; then the balancers that
# hold no VIP are applied and checked; then each VIP holder goes on standby,
# is applied and checked, and resumes.  A client probes the frontend on every
# VIP meanwhile; a failed request fails the run.  The first failing step
# stops the rollout there (the comment says what it left drained or on
# standby) and salt-run exits 1.  Run again once the cause is fixed, it
# first completes the nodes it left drained (still DRAIN in HAProxy: applied,
# checked, readied), then goes on with the others; a server drained by
# someone else is not its own (havip.drain still refuses to drain the last
# one UP beside it), and a balancer left on standby needs salt-run
# havip.resume.  A change of keepalived:vrrp_version is refused (apply it to
# every balancer at once).
#
# deploy pillar keys (all optional): client (the probing minion; default:
# the first node that is not a balancer), rate (requests/s per VIP),
# max_failed (failed probe requests per VIP tolerated; default 0), tgt and
# tgt_type (the minions of the cluster to deploy, default '*' glob: a
# master with several clusters must name one).  The runner refuses any
# other key, naming the nearest known one.
#
# The operator's own application instead (deploy:state, the SLS to apply;
# deploy:pools, the pools whose servers get it, default every pool with a
# server that is a node):
#
#   salt-run state.orchestrate havip.deploy \
#     pillar='{"deploy": {"state": "shop.app", "pools": ["api"]}}'
#
# Each of those servers that is a node, one at a time: drained on every
# balancer in every pool that holds it, state.apply <state> there, readied
# (UP on every balancer), under the probes of the services those pools
# serve.  The first failure stops there, that server left drained (the same
# deploy run again takes it first); servers given by address are skipped
# and named.  salt-run havip.deploy's
# docstring (salt-run -d havip.deploy) says the rest.
# Needs the runner, the module and their helpers: salt-run saltutil.sync_all,
# salt '*' saltutil.sync_all
{%- set deploy = salt['pillar.get']('deploy', {}) %}
{%- if deploy is not mapping %}
{{- raise('havip.deploy: the deploy pillar must be a mapping of options, got ' ~ deploy | tojson) }}
{%- endif %}

havip-deploy-precheck:
  salt.runner:
    - name: havip.status
    - tgt: {{ deploy.get('tgt', '*') | tojson }}
    - tgt_type: {{ deploy.get('tgt_type', 'glob') | tojson }}

havip-deploy-run:
  salt.runner:
    - name: havip.deploy
    - kwarg: {{ deploy | tojson }}
    - require:
      - salt: havip-deploy-precheck
