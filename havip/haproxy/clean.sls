# -*- coding: utf-8 -*-
# vim: ft=sls
# Stops haproxy and removes what havip installed for it.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-haproxy-service-clean:
  service.dead:
    - name: {{ havip.lookup.services.haproxy }}
    - enable: false

havip-haproxy-pkg-clean:
  pkg.removed:
    - pkgs: {{ havip.lookup.pkgs.haproxy | tojson }}
    - require:
      - service: havip-haproxy-service-clean

havip-haproxy-config-clean:
  file.absent:
    - names:
      - {{ havip.lookup.haproxy.config }}
      # the VIPs' TLS certificate and its key, and each service's
      - {{ havip.lookup.haproxy.certificate }}
{%- for service in havip.services %}
{%-   for certificate in service.tls.certificates if certificate.file != havip.lookup.haproxy.certificate %}
      - {{ certificate.file }}
{%-   endfor %}
{%- endfor %}
      # the servers havip.drain took out of rotation
      - {{ havip.lookup.haproxy.server_state_file }}
    - require:
      - pkg: havip-haproxy-pkg-clean

havip-haproxy-sysctl-clean:
  file.absent:
    - name: {{ havip.lookup.sysctl_file }}
