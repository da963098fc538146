// Imaging: see the module's other files.
import CPNG
