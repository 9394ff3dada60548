"""The inpainting methods' names, options and defaults as plain data, without torch: the
command line (``genmodels inpaint --help`` answers without importing torch), the web page and
the methods read them here."""

# Each method's command-line options (keyword arguments of the method), VAE methods first.
OPTIONS = {"map": ("steps",), "pseudo_gibbs": ("steps", "final"), "mwg": ("steps", "final"),
           "importance": ("k", "final"), "repaint": ("steps", "jump_length", "resample"),
           "replace": ("steps",), "dps": ("steps", "step_size")}
FLAGS = {"steps": "--steps", "final": "--final", "k": "--proposals",
         "jump_length": "--jump-length", "resample": "--resample", "step_size": "--step-size"}
DEFAULT_METHODS = {"a VAE": "mwg", "a diffusion model": "repaint",
                   "a flow-matching model": "replace"}  # by family (genmodels.inpaint.FAMILIES)

FINAL = "mean"  # what the VAE samplers show on missing pixels unless --final says otherwise
FINALS = ("sample", "mean")
JUMP_LENGTH = 10  # RePaint's j and r: the paper's j = r = 10 (with 250 steps)
RESAMPLE = 10
STEP_SIZE = 0.5  # DPS's ζ per step (see flow_dps; not tuned on a trained MNIST flow)

HALVES = ("top", "bottom", "left", "right")
QUADRANTS = ("quadrants1", "quadrants2", "quadrants3")
MASK_KINDS = (*HALVES, *QUADRANTS, "center", "random:P", "rectangles", "png:PATH")
