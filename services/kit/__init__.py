"""Infrastructure shared by every Kepu service: config, storage, outbox, events, logs, auth."""

import warnings

# nameko 2.14 runs on eventlet, which announces its maintenance mode on import; we know.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
