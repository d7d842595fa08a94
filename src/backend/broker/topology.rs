//! What the new broker lacks of the old broker's topology.
