; tkc kernel rmsNorm
target triple = "nvptx64-nvidia-cuda"

@ss_shared_buf2 = internal addrspace(3) global [2 x float] poison, align 16

define void @rmsNorm(ptr addrspace(1) align 16 %x, ptr addrspace(1) align 16 %w, ptr addrspace(1) align 16 %y, float %eps) {
entry:
  %ss_buf0 = alloca [1 x float], align 16
  %ss_partial_buf1 = alloca [1 x float], align 16
  call void asm sideeffect "griddepcontrol.wait;", "~{memory}"()
  call void asm sideeffect "griddepcontrol.launch_dependents;", "~{memory}"()
  %t0 = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %p1 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 0
  store float 0x0000000000000000, ptr addrspace(0) %p1, align 4
  %p2 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float 0x0000000000000000, ptr addrspace(0) %p2, align 4
  %t3 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t4 = add nsw i32 0, 5
  br label %loop5
loop5:
  %i_1_1.9 = phi i32 [ 0, %entry ], [ %next10, %latch7 ]
  %t11 = icmp slt i32 %i_1_1.9, %t4
  br i1 %t11, label %body6, label %exit8
body6:
  %t12 = mul i32 %t3, 5
  %t13 = add i32 %t12, %i_1_1.9
  %t14 = icmp slt i32 %t13, 288
  br i1 %t14, label %then15, label %endif17
then15:
  %p18 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t19 = load float, ptr addrspace(0) %p18, align 4
  %t20 = sext i32 %t0 to i64
  %t21 = mul nsw i64 %t20, 288
  %t22 = sext i32 %t3 to i64
  %t23 = mul nsw i64 %t22, 5
  %t24 = sext i32 %i_1_1.9 to i64
  %t25 = add nsw i64 %t23, %t24
  %t26 = add nsw i64 %t21, %t25
  %p27 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t26
  %t28 = load half, ptr addrspace(1) %p27, align 2
  %t29 = fpext half %t28 to float
  %t30 = sext i32 %t0 to i64
  %t31 = mul nsw i64 %t30, 288
  %t32 = sext i32 %t3 to i64
  %t33 = mul nsw i64 %t32, 5
  %t34 = sext i32 %i_1_1.9 to i64
  %t35 = add nsw i64 %t33, %t34
  %t36 = add nsw i64 %t31, %t35
  %p37 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t36
  %t38 = load half, ptr addrspace(1) %p37, align 2
  %t39 = fpext half %t38 to float
  %t40 = fmul contract float %t29, %t39
  %t41 = fadd contract float %t19, %t40
  %p42 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t41, ptr addrspace(0) %p42, align 4
  br label %endif17
endif17:
  br label %latch7
latch7:
  %next10 = add nsw i32 %i_1_1.9, 1
  br label %loop5
exit8:
  %p43 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t44 = load float, ptr addrspace(0) %p43, align 4
  %p45 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t46 = load float, ptr addrspace(0) %p45, align 4
  %t47 = bitcast float %t46 to i32
  %t48 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t47, i32 16, i32 31)
  %t49 = bitcast i32 %t48 to float
  %t50 = fadd contract float %t44, %t49
  %p51 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t50, ptr addrspace(0) %p51, align 4
  %p52 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t53 = load float, ptr addrspace(0) %p52, align 4
  %p54 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t55 = load float, ptr addrspace(0) %p54, align 4
  %t56 = bitcast float %t55 to i32
  %t57 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t56, i32 8, i32 31)
  %t58 = bitcast i32 %t57 to float
  %t59 = fadd contract float %t53, %t58
  %p60 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t59, ptr addrspace(0) %p60, align 4
  %p61 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t62 = load float, ptr addrspace(0) %p61, align 4
  %p63 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t64 = load float, ptr addrspace(0) %p63, align 4
  %t65 = bitcast float %t64 to i32
  %t66 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t65, i32 4, i32 31)
  %t67 = bitcast i32 %t66 to float
  %t68 = fadd contract float %t62, %t67
  %p69 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t68, ptr addrspace(0) %p69, align 4
  %p70 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t71 = load float, ptr addrspace(0) %p70, align 4
  %p72 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t73 = load float, ptr addrspace(0) %p72, align 4
  %t74 = bitcast float %t73 to i32
  %t75 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t74, i32 2, i32 31)
  %t76 = bitcast i32 %t75 to float
  %t77 = fadd contract float %t71, %t76
  %p78 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t77, ptr addrspace(0) %p78, align 4
  %p79 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t80 = load float, ptr addrspace(0) %p79, align 4
  %p81 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t82 = load float, ptr addrspace(0) %p81, align 4
  %t83 = bitcast float %t82 to i32
  %t84 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t83, i32 1, i32 31)
  %t85 = bitcast i32 %t84 to float
  %t86 = fadd contract float %t80, %t85
  %p87 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t86, ptr addrspace(0) %p87, align 4
  %t88 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t89 = sdiv i32 %t88, 32
  %t90 = srem i32 %t88, 32
  %t91 = icmp ne i32 %t90, 0
  %t95 = xor i32 %t90, 32
  %t92 = icmp slt i32 %t95, 0
  %t93 = and i1 %t91, %t92
  %t96 = add i32 %t90, 32
  %t94 = select i1 %t93, i32 %t96, i32 %t90
  %t97 = icmp eq i32 %t94, 0
  br i1 %t97, label %then98, label %endif100
then98:
  %p101 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t102 = load float, ptr addrspace(0) %p101, align 4
  %t103 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t104 = sdiv i32 %t103, 32
  %t105 = srem i32 %t103, 32
  %t106 = icmp ne i32 %t105, 0
  %t110 = xor i32 %t105, 32
  %t107 = icmp slt i32 %t110, 0
  %t108 = and i1 %t106, %t107
  %t111 = sub i32 %t104, 1
  %t109 = select i1 %t108, i32 %t111, i32 %t104
  %t112 = sext i32 %t109 to i64
  %p113 = getelementptr inbounds float, ptr addrspace(3) @ss_shared_buf2, i64 %t112
  store float %t102, ptr addrspace(3) %p113, align 4
  br label %endif100
endif100:
  call void @llvm.nvvm.barrier0()
  %p114 = getelementptr inbounds float, ptr addrspace(3) @ss_shared_buf2, i64 0
  %t115 = load float, ptr addrspace(3) %p114, align 4
  %p116 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t115, ptr addrspace(0) %p116, align 4
  %p117 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t118 = load float, ptr addrspace(0) %p117, align 4
  %p119 = getelementptr inbounds float, ptr addrspace(3) @ss_shared_buf2, i64 1
  %t120 = load float, ptr addrspace(3) %p119, align 4
  %t121 = fadd contract float %t118, %t120
  %p122 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  store float %t121, ptr addrspace(0) %p122, align 4
  %p123 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 0
  %t124 = load float, ptr addrspace(0) %p123, align 4
  %p125 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 0
  %t126 = load float, ptr addrspace(0) %p125, align 4
  %t127 = fadd contract float %t124, %t126
  %p128 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 0
  store float %t127, ptr addrspace(0) %p128, align 4
  %p129 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 0
  %t130 = load float, ptr addrspace(0) %p129, align 4
  %t131 = fdiv float %t130, 0x4072000000000000
  %t132 = fadd contract float %t131, %eps
  %t133 = call float @llvm.nvvm.rsqrt.approx.f(float %t132)
  %t134 = add nsw i32 0, 5
  br label %loop135
loop135:
  %i_1_0.139 = phi i32 [ 0, %endif100 ], [ %next140, %latch137 ]
  %t141 = icmp slt i32 %i_1_0.139, %t134
  br i1 %t141, label %body136, label %exit138
body136:
  %t142 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t143 = mul i32 %i_1_0.139, 64
  %t144 = add i32 %t143, %t142
  %t145 = icmp slt i32 %t144, 288
  br i1 %t145, label %then146, label %endif148
then146:
  %t149 = sext i32 %t0 to i64
  %t150 = mul nsw i64 %t149, 288
  %t151 = sext i32 %i_1_0.139 to i64
  %t152 = mul nsw i64 %t151, 64
  %t153 = sext i32 %t142 to i64
  %t154 = add nsw i64 %t152, %t153
  %t155 = add nsw i64 %t150, %t154
  %p156 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t155
  %t157 = load half, ptr addrspace(1) %p156, align 2
  %t158 = fpext half %t157 to float
  %t159 = fmul contract float %t158, %t133
  %t160 = sext i32 %i_1_0.139 to i64
  %t161 = mul nsw i64 %t160, 64
  %t162 = sext i32 %t142 to i64
  %t163 = add nsw i64 %t161, %t162
  %p164 = getelementptr inbounds half, ptr addrspace(1) %w, i64 %t163
  %t165 = load half, ptr addrspace(1) %p164, align 2
  %t166 = fpext half %t165 to float
  %t167 = fmul contract float %t159, %t166
  %t168 = fptrunc float %t167 to half
  %t169 = sext i32 %t0 to i64
  %t170 = mul nsw i64 %t169, 288
  %t171 = sext i32 %i_1_0.139 to i64
  %t172 = mul nsw i64 %t171, 64
  %t173 = sext i32 %t142 to i64
  %t174 = add nsw i64 %t172, %t173
  %t175 = add nsw i64 %t170, %t174
  %p176 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t175
  store half %t168, ptr addrspace(1) %p176, align 2
  br label %endif148
endif148:
  br label %latch137
latch137:
  %next140 = add nsw i32 %i_1_0.139, 1
  br label %loop135
exit138:
  ret void
}

declare float @llvm.nvvm.rsqrt.approx.f(float)
declare i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()
declare i32 @llvm.nvvm.shfl.sync.bfly.i32(i32, i32, i32, i32)
declare void @llvm.nvvm.barrier0()

!0 = distinct !{!0, !1}
!1 = !{!"llvm.loop.unroll.full"}
!nvvm.annotations = !{!2, !3}
!2 = !{ptr @rmsNorm, !"kernel", i32 1}
!3 = !{ptr @rmsNorm, !"maxntidx", i32 64}
