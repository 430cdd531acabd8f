# -*- coding: utf-8 -*-
# vim: ft=sls
# Stops nginx and removes what havip installed for it.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-nginx-service-clean:
  service.dead:
    - name: {{ havip.lookup.services.nginx }}
    - enable: false

havip-nginx-pkg-clean:
  pkg.removed:
    - pkgs: {{ havip.lookup.pkgs.nginx | tojson }}
    - require:
      - service: havip-nginx-service-clean

havip-nginx-config-clean:
  file.absent:
    - names:
      - {{ havip.lookup.nginx.site_file }}
      - {{ havip.lookup.nginx.webroot }}/index.html
    - require:
      - pkg: havip-nginx-pkg-clean
