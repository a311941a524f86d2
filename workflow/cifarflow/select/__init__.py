"""The selection stage: statistics over seeds and images, the selection of the best variant, the study's questions."""
