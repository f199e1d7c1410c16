//! `.npy` load and save for [`Tensor`](crate::Tensor). (To be written.)
