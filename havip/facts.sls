# -*- coding: utf-8 -*-
# vim: ft=sls
# What was deployed here, for the havip execution module (status, check,
# standby, probe): the validated configuration, without the pillar's secrets
# (the states never get them); root's all the same.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

{{ havip.facts_state }}:
  file.serialize:
    - name: {{ havip.facts_file }}
    - dataset: {{ havip | tojson }}
    - serializer: json
    - makedirs: true
    - user: root
    - group: root
    - mode: '0600'
