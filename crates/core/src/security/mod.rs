//! Security: the secrets vault, leak detection, and the other defences every tool and channel uses.
