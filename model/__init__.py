"""model: the MagicVL vision-language model (one piece per module; nothing imported here).

config (MagicVLConfig) · resolution (token-level size math) · vision (masked SigLIP tiles)
· unshuffle (pixel unshuffle, tile reassembly) · projector (MLP) · language (LLM glue)
· magicvl (the composite) · processor (conversations + images -> inputs) · tiny (local random checkpoints).
"""
