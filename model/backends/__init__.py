"""Model backends that scoring uses (generation for judges and classifiers); nothing imported here."""
