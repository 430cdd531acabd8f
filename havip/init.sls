# -*- coding: utf-8 -*-
# vim: ft=sls
# Every minion gets exactly the roles the pillar `havip:nodes` gives it; one
# that is not listed gets nothing, one without the havip pillar fails.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set includes = [] %}
{#- An app node (a pool's server, the operator's own service) gets only the
    facts: SELinux and firewalld there are the operator's (firewalld started
    by havip would close the operator's service). #}
{%- set installs = havip.roles | select('in', ['backend', 'balancer']) | list %}
{%- if havip.roles %}
{%-   do includes.append('.facts') %}
{%-   if installs and havip.selinux.manage %}{% do includes.append('.selinux') %}{% endif %}
{%-   if installs and havip.firewall.manage %}{% do includes.append('.firewall') %}{% endif %}
{%-   if 'backend' in havip.roles %}{% do includes.append('.nginx') %}{% endif %}
{%-   if havip.node.discovered or 'balancer' in havip.roles %}{% do includes.append('.mine') %}{% endif %}
{%-   if 'balancer' in havip.roles %}{% do includes.extend(['.haproxy', '.keepalived']) %}{% endif %}
{#-   The beacon lives in a running salt-minion: none with salt-call --local. #}
{%-   if 'balancer' in havip.roles and opts.get('file_client') != 'local' %}{% do includes.append('.events') %}{% endif %}
{%-   if 'balancer' in havip.roles and havip.metrics.port %}{% do includes.append('.metrics') %}{% endif %}

include: {{ includes | tojson }}
{%- elif not havip.nodes %}

{#- Most likely the pillar top file does not target this minion: say so,
    instead of succeeding with nothing done. #}
havip-no-pillar:
  test.fail_without_changes:
    - name: >-
        {{ grains['id'] }} has no havip pillar (havip:nodes is empty): if it belongs to a
        havip cluster, assign the cluster's pillar to it in the pillar top file (and run
        saltutil.refresh_pillar); if it does not, do not apply havip to it
{%- else %}

havip-not-a-node:
  test.nop:
    - name: {{ grains['id'] }} is not listed in havip:nodes, nothing to do
{%- endif %}
