# The inner loop of the SSSE3 int8 dot product (one accumulator), as llvmlite emits it.
movdqu	(%rdi,%r8), %xmm2
movdqu	(%rsi,%r8), %xmm3
pmaddubsw	%xmm3, %xmm2
pmaddwd	%xmm1, %xmm2
paddd	%xmm2, %xmm0
addq	$16, %r8
