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
    - contents: {{ havip.node.get('page', grains['id']) | json }}
    - mode: '0644'
    - makedirs: true
    - require:
      - pkg: havip-nginx-pkg

{#- nginx -t cannot test a lone server file: wrap it in a minimal main config. #}
havip-nginx-config-file:
  file.managed:
    - name: {{ nginx.site_file }}
    - source: salt://{{ tplroot }}/files/nginx-site.conf.jinja
    - template: jinja
    - mode: '0644'
    - context:
        port: {{ havip.backend.port }}
        webroot: {{ nginx.webroot }}
    - check_cmd: >-
        /bin/sh -c 'printf "pid %s.pid;\nevents {}\nhttp { include %s; }\n" "$1" "$1"
        > "$1.main" && nginx -q -t -c "$1.main"; rc=$?; rm -f "$1.main" "$1.pid"; exit $rc'
        havip-nginx-check
    - require:
      - pkg: havip-nginx-pkg
