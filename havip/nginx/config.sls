# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set nginx = havip.lookup.nginx %}

include:
  - .install
{%- for path in nginx.remove %}

havip-nginx-config-remove-{{ path }}:
  file.absent:
    - name: {{ path }}
    - require:
      - pkg: havip-nginx-pkg
{%- endfor %}

havip-nginx-page-file:
  file.managed:
    - name: {{ nginx.webroot }}/index.html
    - contents: {{ havip.node.page | tojson }}
    - mode: '0644'
    - makedirs: true
    - require:
      - pkg: havip-nginx-pkg

{#- nginx -t cannot test a lone server file: wrap it in a minimal main config. #}
havip-nginx-config-file:
  file.managed:
    - name: {{ nginx.site_file }}
    - source: {{ havip.tofs.sources['havip-nginx-config-file'] | tojson }}
    - template: jinja
    - mode: '0644'
    - context:
        havip: {{ havip | tojson }}
    - check_cmd: >-
        /bin/sh -c 'd=$(mktemp -d) || exit 1;
        printf "pid %s/pid;\nevents {}\nhttp { include %s; }\n" "$d" "$1" > "$d/main"
        && nginx -q -t -c "$d/main"; rc=$?; rm -rf "$d"; exit $rc'
        havip-nginx-check
    - require:
      - pkg: havip-nginx-pkg
