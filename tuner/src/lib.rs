//! Schedule search per kernel guided by a learned cost model, and the tuning database behind a storage trait. Not built yet (see ARCHITECTURE.md).
