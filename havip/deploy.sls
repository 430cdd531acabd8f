# -*- coding: utf-8 -*-
# vim: ft=sls
# A rolling deploy of the havip pillar as it is now (run on the master):
#
#   salt-run state.orchestrate havip.deploy
#   salt-run state.orchestrate havip.deploy pillar='{"deploy": {"client": "client1"}}'
#
# One node at a time, each out of service while it is applied: backends are
# drained in HAProxy, applied, checked and readied; then the balancers that
# hold no VIP are applied and checked; then each VIP holder goes on standby,
# is applied and checked, and resumes.  A client probes the frontend on every
# VIP meanwhile; a failed request fails the run.  The first failing step
# stops the rollout there (the comment says what it left drained or on
# standby) and salt-run exits 1.
#
# deploy pillar keys (all optional): client (the probing minion; default:
# the first node that is not a balancer), rate (requests/s per VIP),
# max_failed (failed probe requests per VIP tolerated; default 0).
# Needs the runner, the module and their helpers: salt-run saltutil.sync_all,
# salt '*' saltutil.sync_all
{%- set deploy = salt['pillar.get']('deploy', {}) %}

havip-deploy-precheck:
  salt.runner:
    - name: havip.status

havip-deploy-run:
  salt.runner:
    - name: havip.deploy
{%- for key in ('client', 'rate', 'max_failed') if key in deploy %}
    - {{ key }}: {{ deploy[key] | json }}
{%- endfor %}
    - require:
      - salt: havip-deploy-precheck
