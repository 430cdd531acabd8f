# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .install

{#- HAProxy binds the VIPs on every balancer, also where it does not hold them yet. #}
{%- for family in havip.vip_families %}
{%-   set proto = 'ipv4' if family == 4 else 'ipv6' %}

havip-haproxy-sysctl-nonlocal-bind-{{ proto }}:
  sysctl.present:
    - name: net.{{ proto }}.ip_nonlocal_bind
    - value: 1
    - config: {{ havip.lookup.sysctl_file }}
    - require_in:
      - file: havip-haproxy-config-file
{%- endfor %}

{#- The servers havip.drain took out of rotation, which HAProxy loads at
    every start and reload: created with none (HAProxy's format version
    alone) before HAProxy ever reads the config; afterwards havip.drain,
    havip.ready and the save below write it (havip.save_server_state). #}
havip-haproxy-server-state-file:
  file.managed:
    - name: {{ havip.lookup.haproxy.server_state_file }}
    - contents: '1'
    - replace: false
    - makedirs: true
    - user: root
    - group: root
    - mode: '0600'

havip-haproxy-config-file:
  file.managed:
    - name: {{ havip.lookup.haproxy.config }}
    - source: {{ havip.tofs.sources['havip-haproxy-config-file'] | tojson }}
    - template: jinja
    - user: root
    - group: {{ havip.lookup.haproxy.group }}
    # It holds the stats password: readable by HAProxy's group only, and
    # never a diff in Salt's output (the template reads the password from
    # the pillar; a diff would show the old password beside the new).
    - mode: '0640'
    - show_changes: false
    - context:
        havip: {{ havip | tojson }}
    - check_cmd: haproxy -c -q -f
    - require:
      - pkg: havip-haproxy-pkg
      - file: havip-haproxy-server-state-file
{%- for service in havip.services %}
{%-   for certificate in service.tls.certificates %}
      - file: {{ certificate.state }}
{%-   endfor %}
{%- endfor %}
{%- for service in havip.services %}
{%-   for certificate in service.tls.certificates %}

{#- Each PEM comes straight from the pillar (contents_pillar): it never shows
    in the rendered SLS, and show_changes keeps it out of Salt's output.
    HAProxy reads it as root before it drops privileges.  A new certificate
    reaches HAProxy by a reload (no connection lost). #}
{{ certificate.state }}:
  file.managed:
    - name: {{ certificate.file }}
    - contents_pillar: {{ certificate.pillar }}
    - user: root
    - group: root
    - mode: '0600'
    - show_changes: false
    - require:
      - pkg: havip-haproxy-pkg
    - watch_in:
      - service: havip-haproxy-service-running
{%-   endfor %}
{%- endfor %}
{%- if not havip.frontend.tls.enabled %}

havip-haproxy-certificate-file:
  file.absent:
    - name: {{ havip.lookup.haproxy.certificate }}
    - require:
      - file: havip-haproxy-config-file
{%- endif %}
{%- set certificates = havip.certificate_files %}

{#- A service's certificate file the model no longer names (a service gone,
    a shorter list of certificates) is removed once the config that named
    it is replaced: havip's own files only (<stem>-<service>-<n><suffix>
    beside lookup:haproxy:certificate, not below), never another file. #}
havip-haproxy-stale-certificates:
  file.tidied:
    - name: {{ certificates.directory }}
    - matches: {{ [certificates.stale] | tojson }}
    - exclude: {{ certificates.current | tojson }}
    - full_path_match: true
    - onlyif:
      - fun: file.directory_exists
        path: {{ certificates.directory }}
    - require:
      - file: havip-haproxy-config-file
