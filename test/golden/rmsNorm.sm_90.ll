; tkc kernel rmsNorm
target triple = "nvptx64-nvidia-cuda"

@ss_shared_buf2 = internal addrspace(3) global [2 x float] poison, align 16

define void @rmsNorm(ptr addrspace(1) align 16 %x, ptr addrspace(1) align 16 %w, ptr addrspace(1) align 16 %y, float %eps) {
entry:
  call void asm sideeffect "griddepcontrol.wait;", "~{memory}"()
  call void asm sideeffect "griddepcontrol.launch_dependents;", "~{memory}"()
  %ss_buf0 = alloca [1 x float], align 16
  %ss_partial_buf1 = alloca [1 x float], align 16
  %t0 = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %t1 = sext i32 0 to i64
  %p2 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 %t1
  store float 0x0000000000000000, ptr addrspace(0) %p2, align 4
  %t3 = sext i32 0 to i64
  %p4 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t3
  store float 0x0000000000000000, ptr addrspace(0) %p4, align 4
  %t5 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t6 = add nsw i32 0, 5
  br label %loop7
loop7:
  %i_1_1.11 = phi i32 [ 0, %entry ], [ %next12, %latch9 ]
  %t13 = icmp slt i32 %i_1_1.11, %t6
  br i1 %t13, label %body8, label %exit10
body8:
  %t14 = mul i32 %t5, 5
  %t15 = add i32 %t14, %i_1_1.11
  %t16 = icmp slt i32 %t15, 288
  br i1 %t16, label %then17, label %endif19
then17:
  %t20 = sext i32 0 to i64
  %p21 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t20
  %t22 = load float, ptr addrspace(0) %p21, align 4
  %t23 = mul i32 %t0, 288
  %t24 = mul i32 %t5, 5
  %t25 = add i32 %t24, %i_1_1.11
  %t26 = add i32 %t23, %t25
  %t27 = sext i32 %t26 to i64
  %p28 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t27
  %t29 = load half, ptr addrspace(1) %p28, align 2
  %t30 = fpext half %t29 to float
  %t31 = mul i32 %t0, 288
  %t32 = mul i32 %t5, 5
  %t33 = add i32 %t32, %i_1_1.11
  %t34 = add i32 %t31, %t33
  %t35 = sext i32 %t34 to i64
  %p36 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t35
  %t37 = load half, ptr addrspace(1) %p36, align 2
  %t38 = fpext half %t37 to float
  %t39 = fmul contract float %t30, %t38
  %t40 = fadd contract float %t22, %t39
  %t41 = sext i32 0 to i64
  %p42 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t41
  store float %t40, ptr addrspace(0) %p42, align 4
  br label %endif19
endif19:
  br label %latch9
latch9:
  %next12 = add nsw i32 %i_1_1.11, 1
  br label %loop7
exit10:
  %t43 = sext i32 0 to i64
  %p44 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t43
  %t45 = load float, ptr addrspace(0) %p44, align 4
  %t46 = sext i32 0 to i64
  %p47 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t46
  %t48 = load float, ptr addrspace(0) %p47, align 4
  %t49 = bitcast float %t48 to i32
  %t50 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t49, i32 16, i32 31)
  %t51 = bitcast i32 %t50 to float
  %t52 = fadd contract float %t45, %t51
  %t53 = sext i32 0 to i64
  %p54 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t53
  store float %t52, ptr addrspace(0) %p54, align 4
  %t55 = sext i32 0 to i64
  %p56 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t55
  %t57 = load float, ptr addrspace(0) %p56, align 4
  %t58 = sext i32 0 to i64
  %p59 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t58
  %t60 = load float, ptr addrspace(0) %p59, align 4
  %t61 = bitcast float %t60 to i32
  %t62 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t61, i32 8, i32 31)
  %t63 = bitcast i32 %t62 to float
  %t64 = fadd contract float %t57, %t63
  %t65 = sext i32 0 to i64
  %p66 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t65
  store float %t64, ptr addrspace(0) %p66, align 4
  %t67 = sext i32 0 to i64
  %p68 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t67
  %t69 = load float, ptr addrspace(0) %p68, align 4
  %t70 = sext i32 0 to i64
  %p71 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t70
  %t72 = load float, ptr addrspace(0) %p71, align 4
  %t73 = bitcast float %t72 to i32
  %t74 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t73, i32 4, i32 31)
  %t75 = bitcast i32 %t74 to float
  %t76 = fadd contract float %t69, %t75
  %t77 = sext i32 0 to i64
  %p78 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t77
  store float %t76, ptr addrspace(0) %p78, align 4
  %t79 = sext i32 0 to i64
  %p80 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t79
  %t81 = load float, ptr addrspace(0) %p80, align 4
  %t82 = sext i32 0 to i64
  %p83 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t82
  %t84 = load float, ptr addrspace(0) %p83, align 4
  %t85 = bitcast float %t84 to i32
  %t86 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t85, i32 2, i32 31)
  %t87 = bitcast i32 %t86 to float
  %t88 = fadd contract float %t81, %t87
  %t89 = sext i32 0 to i64
  %p90 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t89
  store float %t88, ptr addrspace(0) %p90, align 4
  %t91 = sext i32 0 to i64
  %p92 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t91
  %t93 = load float, ptr addrspace(0) %p92, align 4
  %t94 = sext i32 0 to i64
  %p95 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t94
  %t96 = load float, ptr addrspace(0) %p95, align 4
  %t97 = bitcast float %t96 to i32
  %t98 = call i32 @llvm.nvvm.shfl.sync.bfly.i32(i32 -1, i32 %t97, i32 1, i32 31)
  %t99 = bitcast i32 %t98 to float
  %t100 = fadd contract float %t93, %t99
  %t101 = sext i32 0 to i64
  %p102 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t101
  store float %t100, ptr addrspace(0) %p102, align 4
  %t103 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t104 = sdiv i32 %t103, 32
  %t105 = srem i32 %t103, 32
  %t106 = icmp ne i32 %t105, 0
  %t110 = xor i32 %t105, 32
  %t107 = icmp slt i32 %t110, 0
  %t108 = and i1 %t106, %t107
  %t111 = add i32 %t105, 32
  %t109 = select i1 %t108, i32 %t111, i32 %t105
  %t112 = icmp eq i32 %t109, 0
  br i1 %t112, label %then113, label %endif115
then113:
  %t116 = sext i32 0 to i64
  %p117 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t116
  %t118 = load float, ptr addrspace(0) %p117, align 4
  %t119 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t120 = sdiv i32 %t119, 32
  %t121 = srem i32 %t119, 32
  %t122 = icmp ne i32 %t121, 0
  %t126 = xor i32 %t121, 32
  %t123 = icmp slt i32 %t126, 0
  %t124 = and i1 %t122, %t123
  %t127 = sub i32 %t120, 1
  %t125 = select i1 %t124, i32 %t127, i32 %t120
  %t128 = sext i32 %t125 to i64
  %p129 = getelementptr inbounds float, ptr addrspace(3) @ss_shared_buf2, i64 %t128
  store float %t118, ptr addrspace(3) %p129, align 4
  br label %endif115
endif115:
  call void @llvm.nvvm.barrier0()
  %t130 = sext i32 0 to i64
  %p131 = getelementptr inbounds float, ptr addrspace(3) @ss_shared_buf2, i64 %t130
  %t132 = load float, ptr addrspace(3) %p131, align 4
  %t133 = sext i32 0 to i64
  %p134 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t133
  store float %t132, ptr addrspace(0) %p134, align 4
  %t135 = sext i32 0 to i64
  %p136 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t135
  %t137 = load float, ptr addrspace(0) %p136, align 4
  %t138 = sext i32 1 to i64
  %p139 = getelementptr inbounds float, ptr addrspace(3) @ss_shared_buf2, i64 %t138
  %t140 = load float, ptr addrspace(3) %p139, align 4
  %t141 = fadd contract float %t137, %t140
  %t142 = sext i32 0 to i64
  %p143 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t142
  store float %t141, ptr addrspace(0) %p143, align 4
  %t144 = sext i32 0 to i64
  %p145 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 %t144
  %t146 = load float, ptr addrspace(0) %p145, align 4
  %t147 = sext i32 0 to i64
  %p148 = getelementptr inbounds float, ptr addrspace(0) %ss_partial_buf1, i64 %t147
  %t149 = load float, ptr addrspace(0) %p148, align 4
  %t150 = fadd contract float %t146, %t149
  %t151 = sext i32 0 to i64
  %p152 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 %t151
  store float %t150, ptr addrspace(0) %p152, align 4
  %t153 = sext i32 0 to i64
  %p154 = getelementptr inbounds float, ptr addrspace(0) %ss_buf0, i64 %t153
  %t155 = load float, ptr addrspace(0) %p154, align 4
  %t156 = fdiv float %t155, 0x4072000000000000
  %t157 = fadd contract float %t156, %eps
  %t158 = call float @llvm.nvvm.rsqrt.approx.f(float %t157)
  %t159 = add nsw i32 0, 5
  br label %loop160
loop160:
  %i_1_0.164 = phi i32 [ 0, %endif115 ], [ %next165, %latch162 ]
  %t166 = icmp slt i32 %i_1_0.164, %t159
  br i1 %t166, label %body161, label %exit163
body161:
  %t167 = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %t168 = mul i32 %i_1_0.164, 64
  %t169 = add i32 %t168, %t167
  %t170 = icmp slt i32 %t169, 288
  br i1 %t170, label %then171, label %endif173
then171:
  %t174 = mul i32 %t0, 288
  %t175 = mul i32 %i_1_0.164, 64
  %t176 = add i32 %t175, %t167
  %t177 = add i32 %t174, %t176
  %t178 = sext i32 %t177 to i64
  %p179 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t178
  %t180 = load half, ptr addrspace(1) %p179, align 2
  %t181 = fpext half %t180 to float
  %t182 = fmul contract float %t181, %t158
  %t183 = mul i32 %i_1_0.164, 64
  %t184 = add i32 %t183, %t167
  %t185 = sext i32 %t184 to i64
  %p186 = getelementptr inbounds half, ptr addrspace(1) %w, i64 %t185
  %t187 = load half, ptr addrspace(1) %p186, align 2
  %t188 = fpext half %t187 to float
  %t189 = fmul contract float %t182, %t188
  %t190 = fptrunc float %t189 to half
  %t191 = mul i32 %t0, 288
  %t192 = mul i32 %i_1_0.164, 64
  %t193 = add i32 %t192, %t167
  %t194 = add i32 %t191, %t193
  %t195 = sext i32 %t194 to i64
  %p196 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t195
  store half %t190, ptr addrspace(1) %p196, align 2
  br label %endif173
endif173:
  br label %latch162
latch162:
  %next165 = add nsw i32 %i_1_0.164, 1
  br label %loop160
exit163:
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
