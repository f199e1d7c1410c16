//! [`PackedMatmul`]: a matmul with a constant `B` (a Linear/Gemm weight), its
//! bias and activation fixed once; `B` is stored k×n row-major, the layout the
//! tiled kernel streams (for `m == 1`, a 1×128-column GEMV tile).

use super::epilogue::{Activation, Bias, Epi};
use super::matmul::{run_kn, MatmulDesc};
use super::{invalid, need};
use crate::CodegenError;

/// `C = A·B (+ bias) (+ residual)`, then the activation, for a fixed k×n `B`.
#[derive(Debug, Clone)]
pub struct PackedMatmul {
    k: usize,
    n: usize,
    b: Vec<f32>,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl PackedMatmul {
    /// Packs `b` (k×n row-major, or n×k when `b_transposed`) and the optional
    /// bias (`n` elements, one per output column).
    pub fn new(
        k: usize,
        n: usize,
        b: &[f32],
        b_transposed: bool,
        bias: Option<&[f32]>,
        activation: Activation,
    ) -> Result<PackedMatmul, CodegenError> {
        let kn = k
            .checked_mul(n)
            .ok_or(CodegenError::Overflow { operand: "b" })?;
        need("b", b.len(), kn)?;
        if let Some(bias) = bias {
            if bias.len() != n {
                return Err(invalid(
                    "PackedMatmul",
                    format!("bias has {} elements, n is {}", bias.len(), n),
                ));
            }
        }
        let b = if b_transposed {
            let mut t = vec![0f32; kn];
            for j in 0..n {
                for p in 0..k {
                    t[p * n + j] = b[j * k + p];
                }
            }
            t
        } else {
            b[..kn].to_vec()
        };
        Ok(PackedMatmul {
            k,
            n,
            b,
            bias: bias.map(<[f32]>::to_vec),
            activation,
        })
    }

    /// Inner dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `c` (m×n) = epilogue(`a` (m×k) · B), `residual` m×n when given.
    pub fn run(
        &self,
        a: &[f32],
        m: usize,
        residual: Option<&[f32]>,
        c: &mut [f32],
        threads: usize,
    ) -> Result<(), CodegenError> {
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let over = |operand| CodegenError::Overflow { operand };
        let mk = m.checked_mul(self.k).ok_or(over("a"))?;
        let mn = m
            .checked_mul(self.n)
            .filter(|&x| x <= isize::MAX as usize / 4)
            .ok_or(over("c"))?;
        need("a", a.len(), mk)?;
        need("c", c.len(), mn)?;
        if let Some(r) = residual {
            need("residual", r.len(), mn)?;
        }
        let d = MatmulDesc {
            batch: 1,
            m,
            n: self.n,
            k: self.k,
            ..MatmulDesc::default()
        };
        let epi = Epi {
            bias: self
                .bias
                .as_ref()
                .map_or(Bias::None, |b| Bias::Col(b.as_ptr())),
            residual: residual.map_or(std::ptr::null(), |r| r.as_ptr()),
            act: self.activation,
        };
        // SAFETY: lengths checked above; `self.b` holds k×n, the bias n.
        unsafe { run_kn(&d, a.as_ptr(), self.b.as_ptr(), c, epi, threads) };
        Ok(())
    }
}
