// Systemd: see the module's other files.
import CSystemd
