"""geth's external signer: the agent answers geth's `--signer` socket, so geth never
holds a validator key.

`header` reads the Clique header geth asks to sign; `policy` decides whether to sign it
(only Clique headers, only for the identity whose lease is held, only above the
identity's high-water mark, only with a sane timestamp); `keys` holds the key — in the
agent's memory (`secrets` custody) or in the vault, which only signs (`keys` custody)
— and turns a raw ECDSA signature into the 65 bytes Clique wants; `server` speaks
geth's clef protocol on a unix socket only geth can reach.
"""
