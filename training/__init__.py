"""Training package: tf.data readers built from ``schemas``, reference models, train / evaluate /
export. Its modules arrive with the training issue; the package is installed now so the layout
of DESIGN §3 holds from the start."""
