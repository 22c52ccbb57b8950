"""What is in each bundled scikit-image photograph: the ground truth for captions and VQA.

Facts avoid left/right wording, so they stay true for mirrored and cropped variants.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhotoFacts:
    """Ground truth of one base photograph."""

    file: str  # file name inside skimage's data folder
    subject: str  # short noun phrase: "a tabby cat"
    gray: bool  # a black-and-white photograph
    short: tuple[str, ...]  # one-line captions
    details: tuple[str, ...]  # detail sentences for long captions
    qa: tuple[tuple[str, str], ...]  # (question, short answer)


PHOTOS: tuple[PhotoFacts, ...] = (
    PhotoFacts(
        "astronaut.png",
        "an astronaut in an orange flight suit",
        False,
        ("A smiling astronaut poses in an orange flight suit.", "Official portrait of an astronaut."),
        (
            "She wears an orange pressure suit with mission patches on the chest.",
            "An American flag hangs in the background.",
            "A model of the space shuttle stands behind her.",
            "A dark helmet with a glossy visor rests beside her.",
            "Her short hair is light brown.",
            "The backdrop is a plain grey studio wall.",
        ),
        (
            ("What color is the suit?", "Orange"),
            ("Is the person smiling?", "Yes"),
            ("What flag is visible?", "The American flag"),
            ("What vehicle is the model behind her?", "The space shuttle"),
            ("What is the person's job?", "Astronaut"),
        ),
    ),
    PhotoFacts(
        "chelsea.png",
        "a tabby cat",
        False,
        ("Close-up of a tabby cat looking at the camera.", "A curious striped cat."),
        (
            "The cat has striking green-yellow eyes.",
            "Its fur is striped in shades of brown and grey.",
            "A small pink nose sits below the eyes.",
            "Long white whiskers spread from its muzzle.",
            "The background is softly blurred.",
            "The cat's ears are pointed upwards.",
        ),
        (
            ("What animal is this?", "A cat"),
            ("What color are its eyes?", "Green"),
            ("Is the animal striped?", "Yes"),
            ("What color is its nose?", "Pink"),
        ),
    ),
    PhotoFacts(
        "coffee.png",
        "a cup of coffee on a red saucer",
        False,
        ("A cup of coffee on a red saucer.", "Espresso served on a wooden table."),
        (
            "The cup and saucer are both red.",
            "A small metal spoon rests on the saucer.",
            "The coffee has a light crema on top.",
            "The table is made of warm brown wood.",
            "The picture is taken from above at an angle.",
        ),
        (
            ("What drink is in the cup?", "Coffee"),
            ("What color is the saucer?", "Red"),
            ("What is on the saucer besides the cup?", "A spoon"),
            ("What is the table made of?", "Wood"),
        ),
    ),
    PhotoFacts(
        "rocket.jpg",
        "a rocket on its launch pad at dusk",
        False,
        ("A rocket stands on the launch pad at dusk.", "Launch pad lit up in the evening."),
        (
            "Tall lattice lightning towers surround the pad.",
            "The sky is deep blue after sunset.",
            "Bright floodlights glow at the base of the rocket.",
            "The rocket is white and very slender.",
            "Nobody is visible near the pad.",
        ),
        (
            ("What vehicle is shown?", "A rocket"),
            ("Is it day or night?", "Dusk"),
            ("What color is the rocket?", "White"),
            ("What surrounds the launch pad?", "Towers"),
        ),
    ),
    PhotoFacts(
        "hubble_deep_field.jpg",
        "a deep field of distant galaxies",
        False,
        ("Hundreds of galaxies against black space.", "A deep-field image from a space telescope."),
        (
            "Spiral and elliptical galaxies are scattered across the frame.",
            "Some galaxies glow orange while others are bluish white.",
            "The background is almost pure black.",
            "A few bright foreground stars show diffraction spikes.",
            "Many of the smallest dots are very faint.",
        ),
        (
            ("What is shown in this image?", "Galaxies"),
            ("What color is the background?", "Black"),
            ("Was this taken with a telescope?", "Yes"),
        ),
    ),
    PhotoFacts(
        "retina.jpg",
        "a fundus photograph of a human retina",
        False,
        ("Medical image of a human retina.", "Fundus photograph showing blood vessels."),
        (
            "Branching blood vessels spread from the bright optic disc.",
            "The retina appears orange-red against a black border.",
            "The darker macula lies near the centre.",
            "The circular field of view is typical of a fundus camera.",
        ),
        (
            ("What organ is shown?", "The eye (retina)"),
            ("What color dominates the image?", "Orange-red"),
            ("What branches across the image?", "Blood vessels"),
        ),
    ),
    PhotoFacts(
        "motorcycle_left.png",
        "a red motorcycle parked in a garage",
        False,
        ("A red motorcycle parked indoors.", "A classic motorbike in a workshop."),
        (
            "The fuel tank and fenders are glossy red.",
            "Chrome exhaust pipes run along the side.",
            "Shelves with cardboard boxes fill the background.",
            "A wooden bench stands against the wall.",
            "The bike rests on its kickstand on a concrete floor.",
        ),
        (
            ("What vehicle is this?", "A motorcycle"),
            ("What color is it?", "Red"),
            ("Is it indoors or outdoors?", "Indoors"),
            ("How many wheels does it have?", "2"),
        ),
    ),
    PhotoFacts(
        "horse.png",
        "the silhouette of a horse",
        True,
        ("Black silhouette of a horse.", "A horse shape on a white background."),
        (
            "The horse is standing still in profile.",
            "It is filled with solid black.",
            "The background is plain white.",
            "Its tail and mane are visible in outline.",
        ),
        (
            ("What animal is shown?", "A horse"),
            ("What color is the horse?", "Black"),
            ("What color is the background?", "White"),
        ),
    ),
    PhotoFacts(
        "coins.png",
        "old coins laid out in rows",
        True,
        ("Twenty-four old coins arranged in a grid.", "A collection of ancient coins."),
        (
            "The coins are arranged in four rows of six.",
            "Each coin shows a worn relief of a figure or head.",
            "They lie on a dark background.",
            "The coins differ slightly in size.",
        ),
        (
            ("How many coins are there?", "24"),
            ("How many rows of coins are there?", "4"),
            ("Is this photo in color?", "No"),
        ),
    ),
    PhotoFacts(
        "camera.png",
        "a man with a camera on a tripod",
        True,
        ("A photographer behind a camera on a tripod.", "Black-and-white photo of a cameraman."),
        (
            "He wears a dark coat and looks through the viewfinder.",
            "The tripod stands on a mown field.",
            "Low buildings and a tower appear in the distance.",
            "The sky is plain and bright.",
        ),
        (
            ("What is the man using?", "A camera"),
            ("What holds the camera?", "A tripod"),
            ("Is the photo in color?", "No"),
            ("What is he standing on?", "Grass"),
        ),
    ),
    PhotoFacts(
        "moon.png",
        "the cratered surface of the moon",
        True,
        ("Grey cratered lunar surface.", "Close-up of the moon's surface."),
        (
            "Small round craters dot the smooth plain.",
            "Darker patches mark rougher ground.",
            "The light falls at a low angle, casting short shadows.",
        ),
        (("What surface is shown?", "The moon"), ("What marks the surface?", "Craters")),
    ),
    PhotoFacts(
        "ihc.png",
        "a stained tissue sample under a microscope",
        False,
        ("Microscope image of stained tissue.", "Immunohistochemistry slide at high magnification."),
        (
            "Brown stain outlines clusters of cells.",
            "Blue dots mark the cell nuclei.",
            "The tissue forms rounded gland-like structures.",
            "Pale areas separate the stained regions.",
        ),
        (
            ("What kind of image is this?", "A microscope image"),
            ("What color is the stain?", "Brown"),
            ("What color are the nuclei?", "Blue"),
        ),
    ),
    PhotoFacts(
        "brick.png",
        "a brick pavement",
        True,
        ("Rows of grey bricks.", "A brick pavement seen from above."),
        (
            "The bricks are laid in long staggered rows.",
            "Thin pale joints separate each brick.",
            "The surface is evenly lit.",
        ),
        (("What material is shown?", "Brick"), ("Are the bricks in rows?", "Yes")),
    ),
    PhotoFacts(
        "grass.png",
        "a patch of grass",
        True,
        ("Close-up of a patch of grass.", "Dense grass texture."),
        (
            "Thin blades point in every direction.",
            "A few dry stems lie across the green ones.",
            "There is no sky or horizon in the frame.",
        ),
        (("What plant is shown?", "Grass"), ("Is there any sky visible?", "No")),
    ),
    PhotoFacts(
        "gravel.png",
        "a bed of gravel",
        True,
        ("Close-up of loose gravel.", "Small stones covering the ground."),
        (
            "The stones are rounded and of similar size.",
            "Tiny shadows fill the gaps between them.",
            "The texture repeats across the whole frame.",
        ),
        (("What covers the ground?", "Gravel"), ("Are the stones large or small?", "Small")),
    ),
)

STYLE_SENTENCES = (
    "The image is sharply focused.",
    "The lighting is soft and even.",
    "The composition is centred.",
    "Fine textures are clearly visible.",
    "The photo has high contrast.",
    "The framing is tight.",
    "There is no text in the image.",
    "The scene looks calm and still.",
    "The main subject fills most of the frame, leaving little empty space around it.",
    "Light falls evenly across the scene, so both highlights and shadows keep their detail.",
    "Nothing in the background competes for attention with the main subject.",
    "Small details reward a closer look, especially near the centre of the picture.",
)
COLOR_SENTENCES = ("The colors look natural.", "The colors are well balanced.", "Colors are vivid.")
GRAY_SENTENCES = ("The photograph is in black and white.", "Only shades of grey are present.")
