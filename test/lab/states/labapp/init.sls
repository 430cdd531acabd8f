# -*- coding: utf-8 -*-
# vim: ft=sls
# The lab's application on an `app` node (test/lab/test_lab_services.py): a
# systemd unit answering GETs on port 8080 with the minion's id and the
# pillar's app:version; a version change restarts it.  Not the formula's:
# the operator's own state, as `salt-run havip.deploy state=labapp` applies.
{%- set version = salt['pillar.get']('app:version') | int %}

labapp-server:
  file.managed:
    - name: /usr/local/lib/labapp/server.py
    - source: salt://labapp/server.py
    - makedirs: true
    - mode: '0644'

labapp-unit:
  file.managed:
    - name: /etc/systemd/system/labapp.service
    - mode: '0644'
    - contents: |
        [Unit]
        Description=havip lab application, version {{ version }}
        After=network.target

        [Service]
        ExecStart=/usr/bin/python3 /usr/local/lib/labapp/server.py --name {{ grains['id'] }} --version {{ version }} --port 8080

        [Install]
        WantedBy=multi-user.target

labapp-running:
  service.running:
    - name: labapp
    - enable: true
    - watch:
      - file: labapp-server
      - file: labapp-unit
