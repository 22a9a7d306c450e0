"""FuseMax models below the front: the fixed-point golden model and the tile engine's exact cycle model."""
