# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set lookup = havip.lookup %}

include:
  - .install

{#- keepalived runs this as root (enable_script_security): root-owned, not
    writable by anyone else. It only reports; it never stops keepalived. #}
havip-keepalived-check-script-file:
  file.managed:
    - name: {{ lookup.keepalived.check_script }}
    - source: salt://{{ tplroot }}/files/check-haproxy.sh.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0755'
    - context:
        pidfile: {{ lookup.haproxy.pidfile }}
    - require:
      - pkg: havip-keepalived-pkg

havip-keepalived-config-file:
  file.managed:
    - name: {{ lookup.keepalived.config }}
    - source: salt://{{ tplroot }}/files/keepalived.conf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0640'
    - context:
        havip: {{ havip | json }}
        router_id: {{ grains['id'] | json }}
        check_script: {{ lookup.keepalived.check_script }}
    - check_cmd: keepalived -t -f
    - require:
      - pkg: havip-keepalived-pkg
      - file: havip-keepalived-check-script-file
