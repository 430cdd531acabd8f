"""
Companion of Salt's init-script service modules (``debian_service``,
``rh_service``) on hosts where ``systemctl`` is installed but systemd is not
PID 1: containers, chroots, the havip lab.

There Salt's service states ask ``service.offline``, which the systemd module
answers True, and then do nothing ("Running in OFFLINE mode").  The havip
formula maps this module's ``offline`` over it (``provider`` on its service
states), so the init scripts really start, reload and report the daemons.
"""

__virtualname__ = "havip_sysv"


def __virtual__():
    if __grains__.get("kernel") != "Linux":
        return (False, "havip_sysv: init scripts are a Linux matter")
    return __virtualname__


def offline():
    """
    Whether service management is impossible here: never, the init scripts
    work without systemd.

    CLI Example:

    .. code-block:: bash

        salt '*' havip_sysv.offline
    """
    return False
